"""Answering one prediction request with the deployed models: which model serves (champion or
canary challenger), the other one's shadow work, the prediction log and the error-rate rollback.

Plain code, no web framework: the BentoML service calls it for every request and the backtest
calls it for its replayed client, so both route, log and roll back the same way. A request's
batch is a `History`: the whole history sent at once (a canonical frame), or a running batch
the service follows (`batch_state.BatchHistory`), from which a model that answers from
features gets a feature view and any other model the rows so far; both give the same answer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeAlias

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Engine

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.serving import metrics, rollout
from bioprocessml.serving.deployed import Deployment, Slot, TaskModels
from bioprocessml.serving.log_writer import DirectLog, PredictionSink
from bioprocessml.serving.prediction_log import LoggedPrediction, Role
from bioprocessml.serving.request import PredictResponse, Route, TaskAnswer, route_for
from bioprocessml.serving.rollout_store import active_rollout
from bioprocessml.serving.shadow_schedule import ShadowSchedule
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from models.features import FeatureSpec
from models.online import FeatureView

log = logging.getLogger(__name__)
TASK_FIELDS: dict[Task, str] = {"soft_sensor": "titer_now", "harvest": "titer_at_harvest"}
Shadow = Callable[[], None]
ModelInput: TypeAlias = pd.DataFrame | FeatureView


class History(Protocol):
    """A batch's rows so far, as the models take them."""

    @property
    def batch_id(self) -> str: ...

    @property
    def time_h(self) -> float: ...

    def frame(self) -> pd.DataFrame: ...

    def view(self, fs: FeatureSpec) -> FeatureView | None: ...


@dataclass
class FrameHistory:
    """The whole history sent at once (`/predict`, the backtest): every model gets the rows."""

    rows: pd.DataFrame

    @property
    def batch_id(self) -> str:
        return str(self.rows[BATCH_ID].iloc[0])

    @property
    def time_h(self) -> float:
        return float(self.rows[TIME].iloc[-1])

    def frame(self) -> pd.DataFrame:
        return self.rows

    def view(self, fs: FeatureSpec) -> FeatureView | None:
        return None


class Outcome(BaseModel):
    """One model's prediction for one request, or why it failed."""

    slot_version: str
    role: Role
    mean: float | None = None
    lower: float | None = None
    upper: float | None = None
    mode: str | None = None
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
    rollback it caused (the service swaps its deployment, the backtest rebuilds its own).
    Predictions are logged through `sink` (written at once by default; the service passes its
    background writer). The other model shadows the requests `schedule` says are due."""

    def __init__(
        self, settings: Settings, spec: DatasetSpec, engine: Engine, reload: Callable[[], object],
        sink: PredictionSink | None = None,
    ) -> None:  # fmt: skip
        self.settings, self.spec, self.engine, self.reload = settings, spec, engine, reload
        self.sink = sink if sink is not None else DirectLog(engine)
        self.unit = spec.variable(spec.target).canonical_unit
        self.floor = physical_floor(spec)
        self.schedule = ShadowSchedule(settings.rollout.shadow_every_h)

    def answer(
        self, deployment: Deployment, batch: pd.DataFrame | History, request_id: str
    ) -> tuple[PredictResponse, list[Shadow]]:
        """Every task that has a champion answers; the shadow work comes back to be run after
        the response is sent. Raises Unavailable when no task can answer, RuntimeError when a
        champion fails."""
        history = FrameHistory(batch) if isinstance(batch, pd.DataFrame) else batch
        answers: dict[str, TaskAnswer | None] = {}
        unavailable: dict[str, str] = {}
        shadows: list[Shadow] = []
        for task, models in deployment.tasks.items():
            if models.champion is None:
                unavailable[TASK_FIELDS[task]] = models.wanted.reason or f"no {task} champion yet"
                answers[TASK_FIELDS[task]] = None
                continue
            answers[TASK_FIELDS[task]] = self._answer(task, models, history, request_id, shadows)
        if not any(answers.values()):
            raise Unavailable("; ".join(f"{k}: {v}" for k, v in unavailable.items()))
        response = PredictResponse(
            request_id=request_id, batch_id=history.batch_id, time_h=history.time_h,
            unavailable=unavailable, **answers,
        )  # fmt: skip
        return response, shadows

    def _answer(
        self, task: Task, models: TaskModels, history: History, rid: str, shadows: list[Shadow]
    ) -> TaskAnswer:
        assert models.champion is not None
        route: Route = "champion"
        if models.challenger is not None:
            route = route_for(
                history.batch_id, models.wanted.stage, self.settings.rollout.canary_share
            )
        first, second = models.champion, models.challenger
        if route == "canary" and models.challenger is not None:
            first, second = models.challenger, models.champion
        asked = Asked(rid, history.batch_id, history.time_h, route)
        served = self.run(first, models, model_input(first, history))
        if served.error is not None and first is not models.champion:
            self.log_outcome(task, asked, served, is_served=False)
            self.after_challenger_failure(task)
            asked, first, second = Asked(rid, asked.batch_id, asked.time_h), models.champion, None
            served = self.run(first, models, model_input(first, history))
        self.log_outcome(task, asked, served, is_served=True)
        if served.error is not None:
            raise RuntimeError(f"{task} champion version {first.version} failed: {served.error}")
        if second is not None:
            self.queue_shadow(task, models, second, history, asked, served, shadows)
        assert served.mean is not None and served.lower is not None and served.upper is not None
        return TaskAnswer(
            mean=served.mean, lower=served.lower, upper=served.upper, unit=self.unit,
            model=first.name, version=first.version, route=asked.route, mode=served.mode,
        )  # fmt: skip

    def queue_shadow(
        self, task: Task, models: TaskModels, slot: Slot, history: History, asked: Asked,
        served: Outcome, shadows: list[Shadow],
    ) -> None:  # fmt: skip
        """The other model's prediction to run later, if the schedule says this request is due;
        its input as of now (the batch may grow before it runs)."""
        if not self.schedule.due(task, asked.batch_id, slot.version, asked.time_h):
            metrics.SHADOW_SKIPPED.inc()
            return
        data = model_input(slot, history)
        shadows.append(partial(self.shadow, task, models, slot, data, asked, served))

    def run(self, slot: Slot, models: TaskModels, data: ModelInput) -> Outcome:
        """One model's answer, kept within the target's physical bounds, or its error."""
        role: Role = "champion" if slot is models.champion else "challenger"
        start = time.perf_counter()
        try:
            mean, lower, upper, mode = predict_last(slot, data)
            if not all(math.isfinite(v) for v in (mean, lower, upper)):
                raise ValueError(f"non-finite prediction {mean}, [{lower}, {upper}]")
            if self.floor is not None:
                mean, lower, upper = (max(self.floor, v) for v in (mean, lower, upper))
            outcome = Outcome(
                slot_version=slot.version, role=role, mean=mean, lower=lower, upper=upper,
                mode=mode, seconds=time.perf_counter() - start,
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
        self, task: Task, models: TaskModels, slot: Slot, data: ModelInput, asked: Asked,
        served: Outcome,
    ) -> None:  # fmt: skip
        """The other model's prediction, after the answer went out: logged, never returned."""
        outcome = self.run(slot, models, data)
        self.log_outcome(task, asked, outcome, is_served=False)
        if outcome.mean is not None and served.mean is not None:
            metrics.DISAGREEMENT.labels(task).observe(abs(outcome.mean - served.mean))
        if outcome.error is not None and outcome.role == "challenger":
            self.after_challenger_failure(task)

    def log_outcome(self, task: Task, asked: Asked, outcome: Outcome, is_served: bool) -> None:
        metrics.PREDICTIONS.labels(
            task, outcome.slot_version, outcome.role, asked.route,
            "failed" if outcome.error else "ok",
        ).inc()  # fmt: skip
        self.sink.record([LoggedPrediction(
            request_id=asked.request_id, batch_id=asked.batch_id, task=task,
            model_version=outcome.slot_version, role=outcome.role, route=asked.route,
            served=is_served, batch_time_h=asked.time_h, mean=outcome.mean, lower=outcome.lower,
            upper=outcome.upper, error=outcome.error, latency_ms=outcome.seconds * 1000,
        )])  # fmt: skip

    def after_challenger_failure(self, task: Task) -> None:
        """Roll back at once when the challenger's failure rate passes the limit (the log is
        written first, so the rate counts this failure). A database that cannot be read now
        only delays this: the answer is never failed for it."""
        try:
            self.sink.flush(5.0)
            state = active_rollout(self.engine, task)
            if state is None:
                return
            decision = rollout.judge(self.settings, state)
            if decision.stage == "rolled_back":
                rollout.apply(self.settings, state, decision, None, notify=False)
                self.reload()
        except Exception:
            log.exception("%s: judging the challenger's failures failed; judged again later", task)


@dataclass(frozen=True)
class Asked:
    """What a logged prediction answered: request, batch and its time, route."""

    request_id: str
    batch_id: str
    time_h: float
    route: Route = "champion"


def model_input(slot: Slot, history: History) -> ModelInput:
    """A feature view for a model that answers from one, else the rows."""
    if slot.online is not None:
        view = history.view(slot.online.features)
        if view is not None:
            return view
    return history.frame()


def predict_last(slot: Slot, data: ModelInput) -> tuple[float, float, float, str | None]:
    """Mean, bounds and mode (if the model has modes) at the history's last row."""
    if isinstance(data, FeatureView):
        p = slot.online.predict_online(data)
        mode = p.mode[-1] if p.mode is not None else None
        return float(p.mean[-1]), float(p.lower[-1]), float(p.upper[-1]), mode
    row: Any = pd.DataFrame(slot.model.predict(data)).iloc[-1]
    mode = row.get("mode")
    return float(row["mean"]), float(row["lower"]), float(row["upper"]), mode
