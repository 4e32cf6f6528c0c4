"""Drift-stage tasks: the batch check, the retrain request, and the MLflow monitoring run."""

from __future__ import annotations

from pathlib import Path

import mlflow
from prefect import get_run_logger, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType

from bioprocessml.events import DRIFT_DETECTED, DriftPayload, batch_resource, emit
from bioprocessml.settings import Settings
from models.registry import configure
from monitoring.history import MONITORING_EXPERIMENT, DriftRecord
from monitoring.monitor import monitor_batch

RETRAIN_DEPLOYMENT = "on-drift"


def retrain_pending() -> bool:
    """Is a retraining run of the drift-triggered deployment scheduled, pending or running?"""
    states = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[RETRAIN_DEPLOYMENT])
            ),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states))
            ),
            limit=1,
        )
    return bool(runs)


@task(name="check-batch", retries=1, retry_delay_seconds=5)
def check_batch(batch_id: str) -> DriftRecord:
    record = monitor_batch(Settings(), batch_id, pending=retrain_pending())
    get_run_logger().info(
        "%s: data drift %s %s, error ratio %s, CUSUM %.2f → %s",
        batch_id, record.data_drift, record.drifted_columns, record.error_ratio, record.cusum,
        "retrain requested" if record.requested else (record.suppressed or "no action"),
    )  # fmt: skip
    return record


@task(name="request-retrain", retries=3, retry_delay_seconds=2)
def request_retrain(record: DriftRecord, data_version: str) -> str | None:
    if not record.requested:
        return None
    payload = DriftPayload(
        batch_id=record.batch_id, kind=record.kind or "data", reasons=record.reasons,
        data_version=data_version or None, tasks=list(record.tasks),
        worse_than_naive=[f"{t}:{v}" for t, v in record.worse_champions().items()],
    )  # fmt: skip
    return emit(DRIFT_DETECTED, batch_resource(record.batch_id), payload)


@task(name="log-monitoring-run", retries=2, retry_delay_seconds=5)
def log_monitoring_run(record: DriftRecord, record_file: Path) -> str:
    """One MLflow run per checked batch, with the Evidently report and the JSON record."""
    experiment = configure(Settings(), MONITORING_EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment, run_name=f"drift {record.batch_id}") as run:
        mlflow.set_tags({
            "batch_id": record.batch_id, "champion_version": str(record.champion_version),
            "data_drift": str(record.data_drift), "concept_alarm": str(record.concept_alarm),
            "retrain_requested": str(record.requested), "drifted_columns": ",".join(record.drifted_columns),
        })  # fmt: skip
        metrics = {"drift_share": record.drift_share, "cusum": record.cusum}
        if record.error_ratio is not None and record.batch_rmse is not None:
            metrics |= {"error_ratio": record.error_ratio, "batch_rmse": record.batch_rmse}
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(record_file), artifact_path="drift")
        if record.report and Path(record.report).is_file():
            mlflow.log_artifact(record.report, artifact_path="drift")
    return run.info.run_id
