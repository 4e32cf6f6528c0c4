"""Rollout of a challenger: begin in shadow, score it on each finished batch, move it to canary,
promote or roll it back, and tell the running service. The flow, the service (error-rate
rollback) and the CLI (`bioprocessml rollback`) all go through these functions."""

from __future__ import annotations

import logging
import urllib.request
from urllib.error import URLError

from bioprocessml.errors import BioprocessMLError
from bioprocessml.ingest.accepted import read_accepted
from bioprocessml.serving.announce import announce_stage
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.prediction_log import (
    batch_predictions,
    canary_answers,
    failure_counts,
    paired_batch_error,
)
from bioprocessml.serving.rollout_decision import Decision, decide
from bioprocessml.serving.rollout_store import (
    Evidence,
    RolloutState,
    active_rollout,
    active_rollouts,
    add_evidence,
    evidence_of,
    set_stage,
    start_rollout,
)
from bioprocessml.settings import Settings
from models.base import TASKS, Task
from models.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    alias_version,
    configure,
    delete_alias,
    promote,
    set_alias,
)

log = logging.getLogger(__name__)


class RolloutError(BioprocessMLError):
    """A rollout cannot start or change as asked (no champion, nothing to roll back)."""


def begin(settings: Settings, task: Task, version: str, reason: str) -> RolloutState:
    """Start shadowing a challenger version against the current champion."""
    configure(settings)
    champion = alias_version(task, CHAMPION)
    if champion is None:
        raise RolloutError(f"{task}: no champion to compare challenger version {version} with")
    state = start_rollout(
        engine_for(settings.prediction_log_url), task, str(champion.version), version, reason
    )
    notify_service(settings)
    return state


def apply(
    settings: Settings, state: RolloutState, decision: Decision, batch: str | None,
    notify: bool = True,
) -> None:  # fmt: skip
    """Persist a stage change and act on it in the registry: promotion moves `champion` (the old
    one becomes `previous`); a rollback removes the `challenger` alias. `notify=False` when the
    service itself made the change and reloads on its own."""
    if decision.stage == state.stage:
        return
    configure(settings)
    if decision.stage == "promoted":
        promote(state.task, state.challenger_version)
    elif decision.stage == "rolled_back":
        challenger = alias_version(state.task, CHALLENGER)
        if challenger is not None and str(challenger.version) == state.challenger_version:
            delete_alias(state.task, CHALLENGER)
    set_stage(
        engine_for(settings.prediction_log_url), state.id, decision.stage, decision.reason, batch
    )
    log.info("%s rollout of version %s: %s (%s)", state.task, state.challenger_version,
             decision.stage, decision.reason)  # fmt: skip
    announce_stage(state, decision, batch)  # issue 18: notifications
    if notify:
        notify_service(settings)


def score_batch(settings: Settings, batch_id: str) -> dict[Task, Decision]:
    """Add a finished batch's paired errors to each active rollout and decide; the stage stays
    when the batch has no paired predictions. Tasks without a rollout are left out."""
    engine = engine_for(settings.prediction_log_url)
    active = active_rollouts(engine)
    if not active:
        return {}
    from bioprocessml.spec import load_spec

    batch = read_accepted(settings, batch_id)
    target = load_spec(settings.spec_path).target
    decisions = {}
    for task, state in active.items():
        versions = [state.champion_version, state.challenger_version]
        logged = batch_predictions(engine, batch_id, task, versions, since=state.started_at)
        errors = paired_batch_error(logged, batch, target, task, *versions)
        if errors is not None:
            champion_error, challenger_error, points = errors
            served = canary_answers(
                engine, batch_id, task, state.challenger_version, state.started_at
            )
            add_evidence(engine, state.id, Evidence(
                batch_id=batch_id, stage=state.stage, champion_error=champion_error,
                challenger_error=challenger_error, points=points, canary_answers=served,
            ))  # fmt: skip
        decisions[task] = judge(settings, state)
        apply(settings, state, decisions[task], batch_id)
    return decisions


def judge(settings: Settings, state: RolloutState) -> Decision:
    engine = engine_for(settings.prediction_log_url)
    evidence = evidence_of(engine, state.id)
    requests, failures = failure_counts(
        engine, state.task, state.challenger_version, state.started_at
    )
    return decide(
        state.stage,
        [e.champion_error for e in evidence],
        [e.challenger_error for e in evidence],
        canary_batches=sum(e.stage == "canary" and e.canary_answers > 0 for e in evidence),
        canary_answers=sum(e.canary_answers for e in evidence if e.stage == "canary"),
        challenger_requests=requests,
        challenger_failures=failures,
        rules=settings.rollout,
    )


def roll_back(settings: Settings, task: Task, reason: str) -> str:
    """By hand: end the task's active rollout, or with none, restore the `previous` champion."""
    state = active_rollout(engine_for(settings.prediction_log_url), task)
    if state is not None:
        apply(settings, state, Decision(stage="rolled_back", reason=reason), None)
        return f"{task}: rolled back challenger version {state.challenger_version}"
    configure(settings)
    previous, champion = alias_version(task, PREVIOUS), alias_version(task, CHAMPION)
    if previous is None or champion is None:
        raise RolloutError(f"{task}: no active rollout and no previous champion to restore")
    set_alias(task, CHAMPION, str(previous.version))
    set_alias(task, PREVIOUS, str(champion.version))
    notify_service(settings)
    return f"{task}: champion restored to version {previous.version} (was {champion.version})"


def notify_service(settings: Settings) -> bool:
    """Ask the running service to reload now; it also polls, so a miss only delays the switch."""
    token = settings.serving.admin_token
    if token is None:
        return False
    request = urllib.request.Request(
        f"{settings.serving.url}/admin/reload", method="POST",
        headers={"Authorization": f"Bearer {token.get_secret_value()}"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(response.status == 200)
    except (URLError, OSError) as exc:
        log.info("service not reloaded (%s); it will pick the change up when it polls", exc)
        return False


def as_task(name: str) -> Task:
    if name not in TASKS:
        raise RolloutError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    return name
