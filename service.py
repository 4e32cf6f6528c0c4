"""BentoML prediction service: titer now and at harvest, each with a 95 % interval, from the
models the MLflow registry's aliases and the active rollouts name.

During a rollout the other model of each task predicts in the background after the answer is
sent (shadow), and a stable share of batches gets the challenger's answer (canary). Model
switches replace the whole deployment at once between requests: nothing is dropped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Any

import bentoml
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bioprocessml.serving import metrics, rollout
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.deployed import (
    Deployment,
    ModelCache,
    Slot,
    TaskModels,
    build_deployment,
    wanted_now,
)
from bioprocessml.serving.prediction_log import LoggedPrediction, Role, record
from bioprocessml.serving.request import (
    Cell,
    InputError,
    PredictResponse,
    Route,
    TaskAnswer,
    request_frame,
    route_for,
)
from bioprocessml.serving.rollout_decision import Decision, Stage
from bioprocessml.serving.rollout_store import active_rollout
from bioprocessml.settings import Settings, disable_telemetry
from bioprocessml.spec import load_spec
from models.base import Task

log = logging.getLogger("bioprocessml.service")
admin = FastAPI(title="BioProcessML admin", description="Bearer token: serving.admin_token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
TASK_FIELDS: dict[Task, str] = {"soft_sensor": "titer_now", "harvest": "titer_at_harvest"}


class StageChange(BaseModel):
    task: Task
    stage: Stage
    reason: str = "set by hand"


class Outcome(BaseModel):
    """One model's prediction for one request, or why it failed."""

    slot_version: str
    role: Role
    mean: float | None = None
    lower: float | None = None
    upper: float | None = None
    error: str | None = None
    seconds: float


@bentoml.service(name="bioprocessml", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(admin, path="/admin")
class BioprocessService:
    def __init__(self) -> None:
        import torch

        disable_telemetry()
        torch.set_num_threads(1)  # small models, many requests: threads, not intra-op
        self.settings = Settings()
        self.spec = load_spec(self.settings.spec_path)
        self.unit = self.spec.variable(self.spec.target).canonical_unit
        self.engine = engine_for(self.settings.prediction_log_url)
        self.cache = ModelCache()
        self.deployment = Deployment()
        self.reload_lock = threading.Lock()
        self.background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self.reload()
        threading.Thread(target=self._follow_registry, name="registry", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.deployment.ready

    # --- prediction -----------------------------------------------------------------------
    @bentoml.api
    def predict(self, batch_id: str, rows: list[dict[str, Cell]]) -> PredictResponse:
        """Titer now and at harvest for a batch, from its rows so far (the dataset spec's column
        names and units, like a batch file). 422 says which value is wrong."""
        try:
            frame = request_frame(batch_id, rows, self.spec, self.settings.serving.max_rows)
        except InputError as exc:
            return self._refuse(422, str(exc))
        deployment = self.deployment  # one consistent set of models for this request
        if not deployment.ready:
            return self._refuse(503, "no champion model yet: the first batches still train")
        request_id = uuid.uuid4().hex
        answers: dict[str, TaskAnswer] = {}
        shadows: list[Callable[[], None]] = []
        for task, models in deployment.tasks.items():
            try:
                answers[TASK_FIELDS[task]] = self._answer(task, models, frame, request_id, shadows)
            except RuntimeError as exc:
                return self._refuse(500, str(exc))
        for shadow in shadows:  # only once every answer is ready: they never delay it
            self.background.submit(shadow)
        return PredictResponse(
            request_id=request_id, batch_id=batch_id, time_h=float(frame["time"].iloc[-1]),
            **answers,
        )  # fmt: skip

    def _answer(
        self, task: Task, models: TaskModels, frame: pd.DataFrame, rid: str,
        shadows: list[Callable[[], None]],
    ) -> TaskAnswer:  # fmt: skip
        batch_id = str(frame["batch_id"].iloc[0])
        assert models.champion is not None
        route: Route = "champion"
        if models.challenger is not None:
            route = route_for(batch_id, models.wanted.stage, self.settings.rollout.canary_share)
        first, second = models.champion, models.challenger
        if route == "canary" and models.challenger is not None:
            first, second = models.challenger, models.champion
        served = self._run(first, models, frame)
        if served.error is not None and first is not models.champion:
            self._log(task, rid, frame, route, served, is_served=False)
            self._after_challenger_failure(task)
            route, first, second = "champion", models.champion, None
            served = self._run(first, models, frame)
        self._log(task, rid, frame, route, served, is_served=True)
        if served.error is not None:
            raise RuntimeError(f"{task} champion version {first.version} failed: {served.error}")
        if second is not None:
            shadows.append(partial(self._shadow, task, models, second, frame, rid, route, served))
        assert served.mean is not None and served.lower is not None and served.upper is not None
        return TaskAnswer(
            mean=served.mean, lower=served.lower, upper=served.upper, unit=self.unit,
            model=first.name, version=first.version, route=route,
        )  # fmt: skip

    def _run(self, slot: Slot, models: TaskModels, frame: pd.DataFrame) -> Outcome:
        role: Role = "champion" if slot is models.champion else "challenger"
        start = time.perf_counter()
        try:
            row = pd.DataFrame(slot.model.predict(frame)).iloc[-1]
            outcome = Outcome(
                slot_version=slot.version, role=role, mean=float(row["mean"]),
                lower=float(row["lower"]), upper=float(row["upper"]),
                seconds=time.perf_counter() - start,
            )  # fmt: skip
        except Exception as exc:  # a model failure is logged and counted, never raised raw
            log.exception("%s version %s failed", slot.name, slot.version)
            outcome = Outcome(
                slot_version=slot.version, role=role, error=f"{type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
            )  # fmt: skip
        labels = (slot.task, slot.version, role)
        metrics.LATENCY.labels(*labels).observe(outcome.seconds)
        return outcome

    def _shadow(
        self, task: Task, models: TaskModels, slot: Slot, frame: pd.DataFrame, rid: str,
        route: Route, served: Outcome,
    ) -> None:  # fmt: skip
        """The other model's prediction, after the answer went out: logged, never returned."""
        outcome = self._run(slot, models, frame)
        self._log(task, rid, frame, route, outcome, is_served=False)
        if outcome.mean is not None and served.mean is not None:
            metrics.DISAGREEMENT.labels(task).observe(abs(outcome.mean - served.mean))
        if outcome.error is not None and outcome.role == "challenger":
            self._after_challenger_failure(task)

    def _log(
        self, task: Task, rid: str, frame: pd.DataFrame, route: Route, outcome: Outcome,
        is_served: bool,
    ) -> None:  # fmt: skip
        metrics.PREDICTIONS.labels(
            task, outcome.slot_version, outcome.role, route,
            "failed" if outcome.error else "ok",
        ).inc()  # fmt: skip
        record(self.engine, [LoggedPrediction(
            request_id=rid, batch_id=str(frame["batch_id"].iloc[0]), task=task,
            model_version=outcome.slot_version, role=outcome.role, route=route, served=is_served,
            batch_time_h=float(frame["time"].iloc[-1]), mean=outcome.mean, lower=outcome.lower,
            upper=outcome.upper, error=outcome.error, latency_ms=outcome.seconds * 1000,
        )])  # fmt: skip

    def _after_challenger_failure(self, task: Task) -> None:
        """Roll back at once when the challenger's failure rate passes the limit."""
        state = active_rollout(self.engine, task)
        if state is None:
            return
        decision = rollout.judge(self.settings, state)
        if decision.stage == "rolled_back":
            rollout.apply(self.settings, state, decision, None, notify=False)
            self.reload()

    def _refuse(self, status: int, message: str) -> Any:
        """An error answer with its reason (BentoML passes a Response through as it is)."""
        metrics.REJECTED.labels(str(status)).inc()
        return JSONResponse({"error": message}, status_code=status)

    # --- model switching ------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Load what the registry and the rollouts now name, then swap it in at once."""
        with self.reload_lock:
            deployment = build_deployment(self.cache, wanted_now(self.settings))
            self.deployment = deployment
            self.cache.keep_only(deployment)
            for task, models in deployment.tasks.items():
                for stage in ("none", "shadow", "canary"):
                    live = (models.wanted.stage or "none") == stage
                    metrics.STAGE.labels(task, stage).set(1.0 if live else 0.0)
        return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.deployment.ready,
            "tasks": {
                task: {
                    "champion": m.wanted.champion,
                    "challenger": m.wanted.challenger,
                    "stage": m.wanted.stage,
                }
                for task, m in self.deployment.tasks.items()
            },
        }

    def _follow_registry(self) -> None:
        """Poll the aliases and rollouts, so a change made anywhere reaches this service."""
        while True:
            time.sleep(self.settings.serving.poll_seconds)
            try:
                if wanted_now(self.settings) != self.deployment.wanted():
                    self.reload()
            except Exception:
                log.exception("checking the registry failed; trying again")

    # --- admin ----------------------------------------------------------------------------
    def _require_admin(self, creds: HTTPAuthorizationCredentials | None) -> None:
        token = self.settings.serving.admin_token
        if token is None:
            raise HTTPException(
                403, "admin endpoints are off: set BIOPROCESSML_SERVING__ADMIN_TOKEN"
            )
        if creds is None:
            raise HTTPException(
                401, "missing header 'Authorization: Bearer <admin token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        if not secrets.compare_digest(creds.credentials, token.get_secret_value()):
            raise HTTPException(403, "wrong admin token")

    @admin.post("/reload")
    def admin_reload(self, creds: Credentials) -> dict[str, Any]:
        """Load the models the registry names now (the rollout flow calls this)."""
        self._require_admin(creds)
        return self.reload()

    @admin.get("/status")
    def admin_status(self, creds: Credentials) -> dict[str, Any]:
        self._require_admin(creds)
        return self.status()

    @admin.post("/stage")
    def admin_stage(self, change: StageChange, creds: Credentials) -> dict[str, Any]:
        """Move the task's active rollout to a stage by hand (e.g. promote or roll back now)."""
        self._require_admin(creds)
        state = active_rollout(self.engine, change.task)
        if state is None:
            raise HTTPException(409, f"{change.task}: no active rollout")
        if change.stage == "shadow" or change.stage == state.stage:
            raise HTTPException(409, f"{change.task}: rollout is in {state.stage} already or "
                                     f"cannot go back to {change.stage}")  # fmt: skip
        decision = Decision(stage=change.stage, reason=f"manual: {change.reason}")
        rollout.apply(self.settings, state, decision, None, notify=False)
        return self.reload()
