"""Accepted batches → drift flow (on-accepted) → bootstrap retrain request → retrain deployment
(on-drift) → champion in the MLflow registry: the chain through its events on a real server."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow import MlflowClient

from bioprocessml.events import BATCH_ACCEPTED, DRIFT_DETECTED
from bioprocessml.settings import Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from models.registry import CHAMPION, GATE_TAG, MODEL_NAMES, alias_version
from monitoring.history import load_history
from tasks.drift import MONITORING_EXPERIMENT
from tests.conftest import TINY
from tests.integration.conftest import drop, events, flow_runs, wait_until


def test_bootstrap_drift_event_starts_retraining_deployment(
    stack: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    needed = stack.thresholds.bootstrap_batches
    for source in write_simulated(tmp_path, spec, needed, "normal", seed=31, start=501, cfg=TINY):
        drop(source, stack.incoming_dir)
    wait_until(
        lambda: len(events(stack, BATCH_ACCEPTED)) >= needed, timeout=240, what="accepted batches"
    )
    drift = wait_until(
        lambda: events(stack, DRIFT_DETECTED), timeout=300, what="bootstrap drift event"
    )
    assert drift[0]["payload"]["kind"] == "bootstrap"
    [run] = wait_until(
        lambda: [r for r in flow_runs(stack, "on-drift") if r["state_type"] == "COMPLETED"],
        timeout=400, what="completed retraining run",
    )  # fmt: skip
    assert run["parameters"]["reason"].startswith("bootstrap drift at batch")
    assert run["parameters"]["worse_than_naive"] == "", "no champion yet: none worse than naive"
    mlflow.set_tracking_uri(stack.tracking_uri)
    # Each task's gate decided and said why; a champion only where a model beat the naive
    # forecast with calibrated intervals (on 10 tiny batches PLS does not always: the gate's job).
    champions = [alias_version(task, CHAMPION) for task in ("soft_sensor", "harvest")]
    for task in ("soft_sensor", "harvest"):
        gate = MlflowClient().get_registered_model(MODEL_NAMES[task]).tags[GATE_TAG]
        assert gate.startswith(("champion", "rejected")) and ("naive" in gate or "coverage" in gate)
    assert any(champions)
    assert all(v.tags["lineage.data_version"] for v in champions if v is not None)
    records = load_history(stack.reports_dir)
    assert sum(r.requested for r in records) == 1, "one bootstrap request, no storm"
    # Each checked batch has a monitoring run; the Evidently report is an artifact of it.
    reported = [r for r in records if r.report]
    assert reported, "batches after the first few are compared with a reference"
    client = MlflowClient()
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    assert experiment is not None
    batch = reported[0].batch_id
    runs = wait_until(
        lambda: client.search_runs([experiment.experiment_id], f"tags.batch_id = '{batch}'"),
        timeout=60, what="the monitoring run",
    )  # fmt: skip
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "drift")}
    assert {f"drift/{batch}.html", f"drift/{batch}.json"} <= artifacts
