"""Answering one prediction request with the deployed models: which model serves (champion or
canary challenger), the other one's shadow work, the prediction log and the error-rate rollback.

Plain code, no web framework: the BentoML service calls it for every request and the backtest
calls it for its replayed client, so both route, log and roll back the same way.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import partial

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Engine

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.serving import metrics, rollout
from bioprocessml.serving.deployed import Deployment, Slot, TaskModels
from bioprocessml.serving.prediction_log import LoggedPrediction, Role, record
from bioprocessml.serving.request import PredictResponse, Route, TaskAnswer, route_for
from bioprocessml.serving.rollout_store import active_rollout
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task

log = logging.getLogger(__name__)
TASK_FIELDS: dict[Task, str] = {"soft_sensor": "titer_now", "harvest": "titer_at_harvest"}
Shadow = Callable[[], None]


class Outcome(BaseModel):
    """One model's prediction for one request, or why it failed."""

    slot_version: str
    role: Role
    mean: float | None = None
    lower: float | None = None
    upper: float | None = None
    error: str | None = None
    seconds: float


class Unavailable(Exception):
    """No task can be answered: every task lacks a champion (503 with the reasons)."""


def physical_floor(spec: DatasetSpec) -> float | None:
    """The target's lower physical bound: 0 for a quantity whose plausible range is
    non-negative (a concentration is never negative); None when the spec allows negatives."""
    bounds = spec.variable(spec.target).canonical_range
    return 0.0 if bounds is None or bounds[0] >= 0 else None


class Answerer:
    """Answers requests for one settings/spec/prediction-log triple; `reload` is called after a
    rollback it caused (the service swaps its deployment, the backtest rebuilds its own)."""

    def __init__(
        self, settings: Settings, spec: DatasetSpec, engine: Engine, reload: Callable[[], object]
    ) -> None:
        self.settings, self.spec, self.engine, self.reload = settings, spec, engine, reload
        self.unit = spec.variable(spec.target).canonical_unit
        self.floor = physical_floor(spec)

    def answer(
        self, deployment: Deployment, frame: pd.DataFrame, request_id: str
    ) -> tuple[PredictResponse, list[Shadow]]:
        """Every task that has a champion answers; the shadow work comes back to be run after
        the response is sent. Raises Unavailable when no task can answer, RuntimeError when a
        champion fails."""
        answers: dict[str, TaskAnswer | None] = {}
        unavailable: dict[str, str] = {}
        shadows: list[Shadow] = []
        for task, models in deployment.tasks.items():
            if models.champion is None:
                unavailable[TASK_FIELDS[task]] = models.wanted.reason or f"no {task} champion yet"
                answers[TASK_FIELDS[task]] = None
                continue
            answers[TASK_FIELDS[task]] = self._answer(task, models, frame, request_id, shadows)
        if not any(answers.values()):
            raise Unavailable("; ".join(f"{k}: {v}" for k, v in unavailable.items()))
        response = PredictResponse(
            request_id=request_id, batch_id=str(frame[BATCH_ID].iloc[0]),
            time_h=float(frame[TIME].iloc[-1]), unavailable=unavailable, **answers,
        )  # fmt: skip
        return response, shadows

    def _answer(
        self, task: Task, models: TaskModels, frame: pd.DataFrame, rid: str, shadows: list[Shadow]
    ) -> TaskAnswer:
        assert models.champion is not None
        route: Route = "champion"
        if models.challenger is not None:
            route = route_for(
                str(frame[BATCH_ID].iloc[0]),
                models.wanted.stage,
                self.settings.rollout.canary_share,
            )
        first, second = models.champion, models.challenger
        if route == "canary" and models.challenger is not None:
            first, second = models.challenger, models.champion
        served = self.run(first, models, frame)
        if served.error is not None and first is not models.champion:
            self.log_outcome(task, rid, frame, route, served, is_served=False)
            self.after_challenger_failure(task)
            route, first, second = "champion", models.champion, None
            served = self.run(first, models, frame)
        self.log_outcome(task, rid, frame, route, served, is_served=True)
        if served.error is not None:
            raise RuntimeError(f"{task} champion version {first.version} failed: {served.error}")
        if second is not None:
            shadows.append(partial(self.shadow, task, models, second, frame, rid, route, served))
        assert served.mean is not None and served.lower is not None and served.upper is not None
        return TaskAnswer(
            mean=served.mean, lower=served.lower, upper=served.upper, unit=self.unit,
            model=first.name, version=first.version, route=route,
        )  # fmt: skip

    def run(self, slot: Slot, models: TaskModels, frame: pd.DataFrame) -> Outcome:
        """One model's answer, kept within the target's physical bounds, or its error."""
        role: Role = "champion" if slot is models.champion else "challenger"
        start = time.perf_counter()
        try:
            row = pd.DataFrame(slot.model.predict(frame)).iloc[-1]
            mean, lower, upper = (float(row[k]) for k in ("mean", "lower", "upper"))
            if not all(math.isfinite(v) for v in (mean, lower, upper)):
                raise ValueError(f"non-finite prediction {mean}, [{lower}, {upper}]")
            if self.floor is not None:
                mean, lower, upper = (max(self.floor, v) for v in (mean, lower, upper))
            outcome = Outcome(
                slot_version=slot.version, role=role, mean=mean, lower=lower, upper=upper,
                seconds=time.perf_counter() - start,
            )  # fmt: skip
        except Exception as exc:  # a model failure is logged and counted, never raised raw
            log.exception("%s version %s failed", slot.name, slot.version)
            outcome = Outcome(
                slot_version=slot.version, role=role, error=f"{type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
            )  # fmt: skip
        metrics.LATENCY.labels(slot.task, slot.version, role).observe(outcome.seconds)
        return outcome

    def shadow(
        self, task: Task, models: TaskModels, slot: Slot, frame: pd.DataFrame, rid: str,
        route: Route, served: Outcome,
    ) -> None:  # fmt: skip
        """The other model's prediction, after the answer went out: logged, never returned."""
        outcome = self.run(slot, models, frame)
        self.log_outcome(task, rid, frame, route, outcome, is_served=False)
        if outcome.mean is not None and served.mean is not None:
            metrics.DISAGREEMENT.labels(task).observe(abs(outcome.mean - served.mean))
        if outcome.error is not None and outcome.role == "challenger":
            self.after_challenger_failure(task)

    def log_outcome(
        self, task: Task, rid: str, frame: pd.DataFrame, route: Route, outcome: Outcome,
        is_served: bool,
    ) -> None:  # fmt: skip
        metrics.PREDICTIONS.labels(
            task, outcome.slot_version, outcome.role, route, "failed" if outcome.error else "ok"
        ).inc()
        record(self.engine, [LoggedPrediction(
            request_id=rid, batch_id=str(frame[BATCH_ID].iloc[0]), task=task,
            model_version=outcome.slot_version, role=outcome.role, route=route, served=is_served,
            batch_time_h=float(frame[TIME].iloc[-1]), mean=outcome.mean, lower=outcome.lower,
            upper=outcome.upper, error=outcome.error, latency_ms=outcome.seconds * 1000,
        )])  # fmt: skip

    def after_challenger_failure(self, task: Task) -> None:
        """Roll back at once when the challenger's failure rate passes the limit."""
        state = active_rollout(self.engine, task)
        if state is None:
            return
        decision = rollout.judge(self.settings, state)
        if decision.stage == "rolled_back":
            rollout.apply(self.settings, state, decision, None, notify=False)
            self.reload()
