"""Persisted rollouts: one row per challenger, its stage, the per-batch evidence and every stage
change, so the flow, the service and the CLI (different processes) agree on where it stands."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from bioprocessml.serving.db import now, rollout_evidence, rollout_transitions, rollouts
from bioprocessml.serving.rollout_decision import ACTIVE, Stage
from models.base import Task


class RolloutState(BaseModel):
    id: int
    task: Task
    champion_version: str
    challenger_version: str
    stage: Stage
    reason: str
    started_at: datetime
    updated_at: datetime


class Evidence(BaseModel):
    batch_id: str
    stage: Stage
    champion_error: float
    challenger_error: float
    points: int
    canary_answers: int = 0


class Transition(BaseModel):
    rollout_id: int
    task: Task
    challenger_version: str
    stage: Stage
    reason: str
    batch_id: str | None
    at: datetime


def active_rollouts(engine: Engine) -> dict[Task, RolloutState]:
    """The active rollout of each task that has one (the newest, should there be several)."""
    query = select(rollouts).where(rollouts.c.stage.in_(ACTIVE)).order_by(rollouts.c.id)
    with engine.connect() as conn:
        states = [RolloutState.model_validate(dict(r)) for r in conn.execute(query).mappings()]
    return {state.task: state for state in states}


def all_rollouts(engine: Engine) -> list[RolloutState]:
    """Every rollout so far, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(rollouts).order_by(rollouts.c.id)).mappings()
        return [RolloutState.model_validate(dict(r)) for r in rows]


def active_rollout(engine: Engine, task: Task) -> RolloutState | None:
    return active_rollouts(engine).get(task)


def get_rollout(engine: Engine, rollout_id: int) -> RolloutState:
    with engine.connect() as conn:
        row = conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).mappings().one()
    return RolloutState.model_validate(dict(row))


def start_rollout(
    engine: Engine, task: Task, champion_version: str, challenger_version: str, reason: str
) -> RolloutState:
    """A new rollout in shadow; one still active for the task is ended as superseded."""
    previous = active_rollout(engine, task)
    if previous is not None:
        set_stage(engine, previous.id, "rolled_back", f"superseded by version {challenger_version}")
    stamp = now()
    with engine.begin() as conn:
        rollout_id = conn.execute(
            insert(rollouts).values(
                task=task,
                champion_version=champion_version,
                challenger_version=challenger_version,
                stage="shadow",
                reason=reason,
                started_at=stamp,
                updated_at=stamp,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        conn.execute(
            insert(rollout_transitions).values(
                rollout_id=rollout_id, stage="shadow", reason=reason, at=stamp
            )
        )
    return get_rollout(engine, int(rollout_id))


def set_stage(
    engine: Engine, rollout_id: int, stage: Stage, reason: str, batch_id: str | None = None
) -> None:
    stamp = now()
    with engine.begin() as conn:
        conn.execute(
            update(rollouts)
            .where(rollouts.c.id == rollout_id)
            .values(stage=stage, reason=reason, updated_at=stamp)
        )
        conn.execute(
            insert(rollout_transitions).values(
                rollout_id=rollout_id, stage=stage, reason=reason, batch_id=batch_id, at=stamp
            )
        )


def add_evidence(engine: Engine, rollout_id: int, evidence: Evidence) -> bool:
    """Record one batch's paired errors; False if that batch was already counted."""
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(rollout_evidence).values(
                    rollout_id=rollout_id, created_at=now(), **evidence.model_dump()
                )
            )
    except IntegrityError:
        return False
    return True


def evidence_of(engine: Engine, rollout_id: int) -> list[Evidence]:
    query = (
        select(rollout_evidence)
        .where(rollout_evidence.c.rollout_id == rollout_id)
        .order_by(rollout_evidence.c.created_at)
    )
    with engine.connect() as conn:
        return [Evidence.model_validate(dict(r)) for r in conn.execute(query).mappings()]


def transitions(engine: Engine, since: datetime | None = None) -> list[Transition]:
    """Every stage change of every rollout, oldest first (the CLI's and the demo's timeline)."""
    query = (
        select(
            rollout_transitions.c.rollout_id,
            rollouts.c.task,
            rollouts.c.challenger_version,
            rollout_transitions.c.stage,
            rollout_transitions.c.reason,
            rollout_transitions.c.batch_id,
            rollout_transitions.c.at,
        )
        .join(rollouts, rollouts.c.id == rollout_transitions.c.rollout_id)
        .order_by(rollout_transitions.c.id)
    )
    if since is not None:
        query = query.where(rollout_transitions.c.at >= since)
    with engine.connect() as conn:
        return [Transition.model_validate(dict(r)) for r in conn.execute(query).mappings()]
