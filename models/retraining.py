"""Retraining as plain functions: accepted data at one version → a fair split → candidates →
the offline gate → registry aliases.

The retrain flow runs these pieces with Prefect (candidates concurrently, events emitted by its
tasks); the backtest runs `retrain` in order. One code path, so both reach the same decisions.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import BaseModel

from bioprocessml.ingest.accepted import load_training_data
from bioprocessml.settings import Settings
from bioprocessml.spec import load_spec
from models.base import TASKS, Candidate, Task
from models.gate import GateResult, beats_naive, calibrated, offline_gate, pick_best
from models.registry import (
    CHALLENGER,
    CHAMPION,
    GATE_TAG,
    MODEL_NAMES,
    PREVIOUS,
    Lineage,
    alias_version,
    configure,
    delete_alias,
    log_candidate,
    promote,
    register,
    set_alias,
)
from models.training import (
    Split,
    candidates_for,
    example_input,
    score_alias,
    split_data,
    train_candidate,
)

log = logging.getLogger(__name__)


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


def champion_trained_on(tasks: tuple[Task, ...] | list[Task]) -> frozenset[str]:
    """Batches the current champions of `tasks` were trained on: never held out in a retraining,
    so challenger and champion are compared on batches neither has seen."""
    seen: set[str] = set()
    for task in tasks:
        version = alias_version(task, CHAMPION)
        if version is not None:
            seen.update(Lineage.from_tags(version.tags).train_batches)
    return frozenset(seen)


def prepare_split(
    settings: Settings, data_version: str | None, tasks: tuple[Task, ...] | list[Task] = TASKS
) -> Split:
    """Accepted batches at one DVC version, split into training and held-out batches."""
    configure(settings)
    data = load_training_data(settings, data_version)
    spec = load_spec(settings.spec_path)
    return split_data(data, spec, settings, trained_on=champion_trained_on(tasks))


def train_and_log(
    name: str, task: Task, split: Split, settings: Settings, parent_run_id: str
) -> LoggedCandidate:
    """Train one candidate, score it on the held-out batches and log it as a child run."""
    experiment = configure(settings)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_candidate(name, task, split, settings, Path(tmp))
        run_id, uri = log_candidate(
            run.candidate, run.metrics, split.lineage, example_input(split), run.plots,
            experiment_id=experiment, parent_run_id=parent_run_id,
        )  # fmt: skip
        log_global_importance(run_id, run.candidate, split, settings, Path(tmp))  # issue 18
    log.info("%s/%s held-out %s", task, name, {k: round(v, 4) for k, v in run.metrics.items()})
    return LoggedCandidate(name=name, task=task, run_id=run_id, model_uri=uri, metrics=run.metrics)


def log_global_importance(
    run_id: str, candidate: Candidate, split: Split, settings: Settings, folder: Path
) -> None:
    """The candidate's global importance (table + plot) in its run; a failure to explain is
    logged, never a reason to lose the trained candidate."""
    from models.explain import log_importance

    try:
        log_importance(run_id, candidate, split.for_task(candidate.task)[1].histories,
                       load_spec(settings.spec_path), folder)  # fmt: skip
    except Exception:
        log.exception("%s/%s: global importance not logged", candidate.task, candidate.name)


def gate_task(
    task: Task, logged: list[LoggedCandidate], split: Split, settings: Settings,
    rollout_active: bool = False, worse_live: str | None = None,
) -> GateOutcome:  # fmt: skip
    """Best candidate against the naive forecast and the champion on the same held-out batches;
    register it and set its alias. A champion that no longer beats the naive forecast, on
    batches it has not seen or live (`worse_live`: the version the monitor found worse on its
    last batches), is replaced by a useful candidate, or retired when there is none. The caller
    announces a challenger."""
    configure(settings)
    t = settings.thresholds
    by_name = {c.name: c for c in logged}
    best = by_name[pick_best({c.name: c.metrics for c in logged}, t.coverage_bounds)]
    champion = score_alias(CHAMPION, task, split)
    gate = offline_gate(
        best.name, best.metrics, champion, t.challenger_margin, t.coverage_bounds, t.naive_margin
    )
    live = live_verdict(task, worse_live, t.naive_window)
    if champion is not None and not rollout_active and (gate.decision != "challenger" or live):
        gate = judge_champion(gate, best, champion, t.coverage_bounds, t.naive_margin, live)
    if gate.decision == "challenger" and rollout_active:
        reason = f"{gate.reason}; but a rollout of {task} is active: judged live first"
        gate = GateResult(decision="rejected", candidate=best.name, reason=reason)
    outcome = GateOutcome(**gate.model_dump(), task=task, champion_metrics=champion)
    if gate.decision in ("champion", "challenger"):
        outcome.version = register(best.model_uri, task, split.lineage, best.run_id)
        if gate.decision == "champion":
            promote(task, outcome.version)
        else:
            set_alias(task, CHALLENGER, outcome.version)
    elif gate.decision == "retired":
        retire(task)
    record_gate(task, outcome)
    log.info("%s: %s %s (%s)", task, best.name, gate.decision, gate.reason)
    return outcome


def live_verdict(task: Task, worse_live: str | None, window: int) -> str | None:
    """Why the current champion counts as worse than the naive forecast live, if the monitor
    said so of this very version (a champion promoted since is judged afresh)."""
    if worse_live is None:  # the usual case: no registry call
        return None
    current = alias_version(task, CHAMPION)
    if current is None or str(current.version) != worse_live:
        return None
    return f"live: v{worse_live} was worse than the naive forecast on its last {window} batches"


def judge_champion(
    gate: GateResult, best: LoggedCandidate, champion: dict[str, float],
    bounds: tuple[float, float], naive_margin: float, live: str | None = None,
) -> GateResult:  # fmt: skip
    """The champion on held-out batches it was not trained on, and live: still better than the
    naive forecast? If not, a candidate that beats naive by the margin takes its place at once;
    without one it retires. No margin on the held-out check (hysteresis): a candidate enters
    only `naive_margin` better than naive, and a champion about as good as naive keeps serving
    rather than flapping. Live evidence (the batches since the last change) outweighs
    held-out batches from before it."""
    useful, why = beats_naive(champion, 0.0)
    if useful and live is None:
        return gate
    verdict = f"the champion no longer beats the naive forecast ({live or why})"
    candidate_ok = calibrated(best.metrics, bounds) and beats_naive(best.metrics, naive_margin)[0]
    if candidate_ok:
        return GateResult(decision="champion", candidate=best.name,
                          reason=f"{verdict}; {best.name} does and replaces it")  # fmt: skip
    return GateResult(decision="retired", candidate=best.name,
                      reason=f"{verdict} and no candidate does: {gate.reason}")  # fmt: skip


def retire(task: Task) -> None:
    """No champion from now on (the old one stays `previous`, restorable by hand)."""
    old = alias_version(task, CHAMPION)
    if old is not None:
        set_alias(task, PREVIOUS, str(old.version))
        delete_alias(task, CHAMPION)


def record_gate(task: Task, outcome: GateOutcome) -> None:
    """The latest gate decision as a tag of the registered model: with no champion, the service
    answers 503 for the task with this reason."""
    client, name = MlflowClient(), MODEL_NAMES[task]
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    version = f" version {outcome.version}" if outcome.version else ""
    text = f"{outcome.decision}{version} ({outcome.candidate}): {outcome.reason}"
    client.set_registered_model_tag(name, GATE_TAG, text[:4900])


def open_parent_run(settings: Settings, split: Split, reason: str) -> str:
    experiment = configure(settings)
    tags = {**split.lineage.tags(), "reason": reason}
    return (
        MlflowClient().create_run(experiment, run_name=f"retrain ({reason})", tags=tags).info.run_id
    )


def close_parent_run(run_id: str, outcomes: list[GateOutcome]) -> None:
    client = MlflowClient()
    for outcome in outcomes:
        version = f" v{outcome.version}" if outcome.version else ""
        client.set_tag(
            run_id, f"gate.{outcome.task}", f"{outcome.decision}{version}: {outcome.reason}"
        )
    client.set_terminated(run_id)


def retrain(
    settings: Settings,
    reason: str,
    data_version: str | None = None,
    tasks: tuple[Task, ...] | list[Task] = TASKS,
    rollout_tasks: frozenset[str] = frozenset(),
    worse_live: Mapping[Task, str] | None = None,
) -> list[GateOutcome]:
    """Every candidate of `tasks`, one after another, then the gate per task (the backtest's
    retraining; the flow does the same with candidates in parallel). `worse_live`: task →
    champion version the monitor found worse than the naive forecast."""
    split = prepare_split(settings, data_version, tasks)
    parent = open_parent_run(settings, split, reason)
    outcomes = []
    for task in tasks:
        logged = []
        for name in candidates_for(task, settings):
            try:
                logged.append(train_and_log(name, task, split, settings, parent))
            except Exception:
                log.exception("%s/%s failed and is left out of the gate", task, name)
        if not logged:
            raise RuntimeError(f"every {task} candidate failed")
        outcomes.append(gate_task(task, logged, split, settings, task in rollout_tasks,
                                  (worse_live or {}).get(task)))  # fmt: skip
    close_parent_run(parent, outcomes)
    return outcomes
