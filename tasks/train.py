"""Retraining tasks: thin wrappers with retries around `models/retraining.py`; the gate's task
announces a challenger with `bioprocess.model.challenger`."""

from __future__ import annotations

from prefect import get_run_logger, task

from bioprocessml.events import MODEL_CHALLENGER, ChallengerPayload, emit, model_resource
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_store import active_rollout
from bioprocessml.settings import Settings
from models import retraining
from models.base import Task
from models.registry import MODEL_NAMES
from models.retraining import GateOutcome, LoggedCandidate
from models.training import Split


@task(name="load-training-data", retries=2, retry_delay_seconds=5)
def prepare_split(data_version: str | None, tasks: list[Task]) -> Split:
    """Accepted batches at one DVC version, split into training and held-out batches."""
    split = retraining.prepare_split(Settings(), data_version, tasks)
    get_run_logger().info(
        "data %s: %d training, %d held-out batches", split.lineage.data_version[:12],
        len(split.train), len(split.holdout),
    )  # fmt: skip
    return split


@task(name="train-candidate", retries=1, retry_delay_seconds=5)
def train_and_log(name: str, task_name: Task, split: Split, parent_run_id: str) -> LoggedCandidate:
    return retraining.train_and_log(name, task_name, split, Settings(), parent_run_id)


@task(name="offline-gate", retries=1, retry_delay_seconds=5)
def gate_and_register(
    task_name: Task, logged: list[LoggedCandidate], split: Split, worse_live: str | None = None
) -> GateOutcome:
    """Best candidate vs the naive forecast and the champion; register, set aliases, announce."""
    settings = Settings()
    busy = active_rollout(engine_for(settings.prediction_log_url), task_name) is not None
    outcome = retraining.gate_task(task_name, logged, split, settings, busy, worse_live)
    if outcome.decision == "challenger" and outcome.version is not None:
        best = next(c for c in logged if c.name == outcome.candidate)
        payload = ChallengerPayload(
            task=task_name, model=MODEL_NAMES[task_name], version=outcome.version,
            run_id=best.run_id, candidate=best.name, reason=outcome.reason, metrics=best.metrics,
        )  # fmt: skip
        emit(MODEL_CHALLENGER, model_resource(MODEL_NAMES[task_name]), payload)
    get_run_logger().info("%s: %s %s (%s)", task_name, outcome.candidate, outcome.decision,
                          outcome.reason)  # fmt: skip
    return outcome
