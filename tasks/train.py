"""Retraining tasks: thin wrappers with retries around models/training.py and models/registry.py."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import get_run_logger, task
from pydantic import BaseModel

from bioprocessml.events import MODEL_CHALLENGER, ChallengerPayload, emit, model_resource
from bioprocessml.ingest.accepted import load_training_data
from bioprocessml.settings import Settings
from bioprocessml.spec import load_spec
from models.base import Task
from models.gate import GateResult, offline_gate, pick_best
from models.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAMES,
    configure,
    log_candidate,
    promote,
    register,
    set_alias,
)
from models.training import Split, example_input, score_alias, split_data, train_candidate


class LoggedCandidate(BaseModel):
    name: str
    task: str
    run_id: str
    model_uri: str
    metrics: dict[str, float]


class GateOutcome(GateResult):
    task: str
    version: str | None = None
    champion_metrics: dict[str, float] | None = None


@task(name="load-training-data", retries=2, retry_delay_seconds=5)
def prepare_split(data_version: str | None = None) -> Split:
    """Accepted batches at one DVC version, split into training and held-out batches."""
    settings = Settings()
    data = load_training_data(settings, data_version)
    split = split_data(data, load_spec(settings.spec_path), settings)
    get_run_logger().info(
        "data %s: %d training, %d held-out batches", data.data_version[:12],
        len(split.train), len(split.holdout),
    )  # fmt: skip
    return split


@task(name="train-candidate", retries=1, retry_delay_seconds=5)
def train_and_log(name: str, task_name: Task, split: Split, parent_run_id: str) -> LoggedCandidate:
    settings = Settings()
    experiment = configure(settings)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_candidate(name, task_name, split, settings, Path(tmp))
        run_id, uri = log_candidate(
            run.candidate, run.metrics, split.lineage, example_input(split), run.plots,
            experiment_id=experiment, parent_run_id=parent_run_id,
        )  # fmt: skip
    get_run_logger().info(
        "%s/%s held-out %s", task_name, name, {k: round(v, 4) for k, v in run.metrics.items()}
    )
    return LoggedCandidate(
        name=name, task=task_name, run_id=run_id, model_uri=uri, metrics=run.metrics
    )


@task(name="offline-gate", retries=1, retry_delay_seconds=5)
def gate_and_register(task_name: Task, logged: list[LoggedCandidate], split: Split) -> GateOutcome:
    """Best candidate vs the champion on the same held-out batches; register and set aliases."""
    settings = Settings()
    configure(settings)
    thresholds = settings.thresholds
    by_name = {c.name: c for c in logged}
    best = by_name[pick_best({c.name: c.metrics for c in logged}, thresholds.coverage_bounds)]
    champion = score_alias(CHAMPION, task_name, split)
    gate = offline_gate(
        best.name, best.metrics, champion, thresholds.challenger_margin, thresholds.coverage_bounds
    )
    outcome = GateOutcome(**gate.model_dump(), task=task_name, champion_metrics=champion)
    if gate.decision != "rejected":
        outcome.version = register(best.model_uri, task_name, split.lineage, best.run_id)
        if gate.decision == "champion":
            promote(task_name, outcome.version)
        else:
            set_alias(task_name, CHALLENGER, outcome.version)
            payload = ChallengerPayload(
                task=task_name, model=MODEL_NAMES[task_name], version=outcome.version,
                run_id=best.run_id, candidate=best.name, reason=gate.reason, metrics=best.metrics,
            )  # fmt: skip
            emit(MODEL_CHALLENGER, model_resource(MODEL_NAMES[task_name]), payload)
    get_run_logger().info("%s: %s %s (%s)", task_name, best.name, gate.decision, gate.reason)
    return outcome
