"""BentoML prediction service: titer now and at harvest, each with a 95 % interval, from the
models the MLflow registry's aliases and the active rollouts name.

During a rollout the other model of each task predicts in the background after the answer is
sent (shadow), and a stable share of batches gets the challenger's answer (canary): see
`bioprocessml/serving/answering.py`, shared with the backtest. Model switches replace the whole
deployment at once between requests: nothing is dropped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import bentoml
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bioprocessml.serving import metrics, rollout, ui  # ui: issue 18
from bioprocessml.serving.answering import Answerer, Unavailable
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.deployed import (
    Deployment,
    ModelCache,
    build_deployment,
    wanted_now,
)
from bioprocessml.serving.explain import ExplainResponse, explain_frame  # issue 18
from bioprocessml.serving.request import (
    Cell,
    InputError,
    PredictResponse,
    request_frame,
)
from bioprocessml.serving.rollout_decision import Decision, Stage
from bioprocessml.serving.rollout_store import active_rollout
from bioprocessml.settings import Settings, disable_telemetry
from bioprocessml.spec import load_spec
from models.base import Task

log = logging.getLogger("bioprocessml.service")
admin = FastAPI(title="BioProcessML admin", description="Bearer token: serving.admin_token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


class StageChange(BaseModel):
    task: Task
    stage: Stage
    reason: str = "set by hand"


@bentoml.service(name="bioprocessml", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(admin, path="/admin")
@bentoml.asgi_app(ui.app, path="/ui")  # issue 18: the plant page
class BioprocessService:
    def __init__(self) -> None:
        import torch

        disable_telemetry()
        torch.set_num_threads(1)  # small models, many requests: threads, not intra-op
        self.settings = Settings()
        self.spec = load_spec(self.settings.spec_path)
        self.engine = engine_for(self.settings.prediction_log_url)
        self.answerer = Answerer(self.settings, self.spec, self.engine, self.reload)
        self.cache = ModelCache()
        self.deployment = Deployment()
        self.reload_lock = threading.Lock()
        self.background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self.reload()
        self.view = ui.attach(ui.OperatorView(self.settings, self.spec, lambda: self.deployment))
        threading.Thread(target=self._follow_registry, name="registry", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.deployment.ready

    # --- prediction -----------------------------------------------------------------------
    @bentoml.api
    def predict(self, batch_id: str, rows: list[dict[str, Cell]]) -> PredictResponse:
        """Titer now and at harvest for a batch, from its rows so far (the dataset spec's column
        names and units, like a batch file). 422 says which value is wrong; a task without a
        champion answers null with the reason in `unavailable` (503 when neither has one)."""
        try:
            frame = request_frame(batch_id, rows, self.spec, self.settings.serving.max_rows)
        except InputError as exc:
            return self._refuse(422, str(exc))
        try:
            response, shadows = self.answerer.answer(self.deployment, frame, uuid.uuid4().hex)
        except Unavailable as exc:
            return self._refuse(503, str(exc))
        except RuntimeError as exc:
            return self._refuse(500, str(exc))
        for shadow in shadows:  # only once every answer is ready: they never delay it
            self.background.submit(shadow)
        self.view.remember(frame, response)  # issue 18: a reference for the plant page
        return response

    @bentoml.api
    def explain(self, batch_id: str, rows: list[dict[str, Cell]]) -> ExplainResponse:
        """SHAP values of the answers /predict gives for the same rows, per dataset-spec column
        and unit: base value (the average batch's answer) + contributions = prediction."""
        try:
            frame = request_frame(batch_id, rows, self.spec, self.settings.serving.max_rows)
        except InputError as exc:
            return self._refuse(422, str(exc))
        if not self.deployment.ready:
            return self._refuse(503, "no champion yet")
        return explain_frame(self.deployment, frame, self.spec, self.settings)

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


ui.describe_service(BioprocessService)  # issue 18: Swagger describes this service
