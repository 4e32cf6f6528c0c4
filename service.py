"""BentoML prediction service: titer now and at harvest, each with a 95 % interval, from the
models the MLflow registry's aliases and the active rollouts name. `/predict` takes a batch's
whole history; `/batches/{batch_id}/rows` follows a running batch, a client sending only its
new rows (`bioprocessml/serving/incremental.py`).

During a rollout the other model of each task predicts in the background after the answer is
sent, for the first request of each batch-hour (shadow, `serving/shadow_schedule.py`), and a stable share of batches gets the challenger's answer (canary): see
`bioprocessml/serving/answering.py`, shared with the backtest. Model switches replace the whole
deployment at once between requests: nothing is dropped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from typing import Annotated, Any

import bentoml
from fastapi import Depends, FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from bioprocessml.serving import metrics, rollout, ui
from bioprocessml.serving.answering import Answerer, Shadow, Unavailable
from bioprocessml.serving.background import Rounds
from bioprocessml.serving.batch_state import BatchSummary
from bioprocessml.serving.batch_store import BatchStore
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.deployed import (
    Deployment,
    ModelCache,
    build_deployment,
    wanted_now,
)
from bioprocessml.serving.explain import ExplainResponse, explain_frame
from bioprocessml.serving.incremental import (
    RowsRefused,
    RowsRequest,
    RowsResponse,
    add_rows,
    batch_summary,
    check_batch_id,
)
from bioprocessml.serving.log_writer import LogWriter
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
batches = FastAPI(
    title="BioProcessML running batches",
    description="Follow a running batch: send only its new rows, get both titers back.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {"description": "rows do not continue the batch held (body: `error`, `rows`, `time_h`)"},
    422: {"description": "rows the dataset spec refuses (body: `error`, `rows`, `time_h`)"},
    503: {"description": "no model can answer now; rows kept (body: `error`, `rows`, `time_h`)"},
}


async def say_what_is_invalid(_request: Any, exc: Exception) -> JSONResponse:
    """A malformed body or path: 422 with one readable message, as every other refusal."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    text = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return JSONResponse({"error": text or str(exc)}, status_code=422)


for _app in (admin, batches):
    _app.add_exception_handler(RequestValidationError, say_what_is_invalid)


class StageChange(BaseModel):
    task: Task
    stage: Stage
    reason: str = "set by hand"


@bentoml.service(name="bioprocessml", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(admin, path="/admin")
@bentoml.asgi_app(batches, path="/batches")
@bentoml.asgi_app(ui.app, path="/ui")  # the plant page
class BioprocessService:
    def __init__(self) -> None:
        import torch

        disable_telemetry()
        torch.set_num_threads(1)  # small models, many requests: threads, not intra-op
        self.settings = Settings()
        self.spec = load_spec(self.settings.spec_path)
        self.engine = engine_for(self.settings.prediction_log_url)
        serving = self.settings.serving
        self.writer = LogWriter(self.engine, serving.log_buffer_rows)
        self.answerer = Answerer(self.settings, self.spec, self.engine, self.reload, self.writer)
        self.store = BatchStore(self.spec, serving, self.engine, self.writer)
        self.cache = ModelCache()
        self.deployment = Deployment()
        self.reload_lock = threading.Lock()
        self.background = Rounds(capacity=serving.shadow_queue)
        try:
            self.reload()
        except Exception:  # the registry is down: not ready until the poller loads the models
            log.exception("loading the models failed; retrying every %s s", serving.poll_seconds)
        self.view = ui.attach(ui.OperatorView(self.settings, self.spec, lambda: self.deployment))
        self.stopping = threading.Event()
        self.poller = threading.Thread(target=self._follow_registry, name="registry", daemon=True)
        self.poller.start()

    def __is_ready__(self) -> bool:
        return self.deployment.ready

    @bentoml.on_shutdown
    def write_what_is_left(self) -> None:
        """The registry poller stops (it sets MLflow's process-wide tracking URI), shadows
        finish, then every waiting log row is written (if the database answers)."""
        self.stopping.set()
        self.poller.join(30.0)
        self.background.close()
        self.writer.close(timeout=10.0)

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
        self._run_later(shadows)
        self.view.remember(lambda: frame, response)  # a reference for the plant page
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

    @batches.post("/{batch_id}/rows", response_model=RowsResponse, responses=REFUSALS)
    def add_batch_rows(self, batch_id: str, request: RowsRequest) -> Any:
        """Titer now and at harvest after the new rows of a running batch: send `first_row`
        (0, then the previous answer's `rows`) and only the rows since the last call. The
        answer equals `/predict`'s with the whole history; 409 says where to continue."""
        serving = self.settings.serving
        try:
            response, shadows = add_rows(
                self.store, self.answerer, self.deployment, self.spec, serving.max_rows,
                batch_id, request,
            )  # fmt: skip
        except RowsRefused as refused:
            return self._refuse(refused.status, refused.message, refused.body())
        self._run_later(shadows)
        self.view.remember(lambda: self._held_frame(batch_id), response)
        return Response(response.model_dump_json(), media_type="application/json")  # as is

    @batches.get("/{batch_id}", response_model=BatchSummary, responses=REFUSALS)
    def batch_status(self, batch_id: str) -> Any:
        """What the service holds of a running batch: a client continues from `rows`."""
        try:
            return batch_summary(self.store, batch_id)
        except RowsRefused as refused:
            return self._refuse(refused.status, refused.message, refused.body())

    @batches.delete("/{batch_id}", response_model=BatchSummary, responses=REFUSALS)
    def end_batch(self, batch_id: str) -> Any:
        """The batch is over: the service forgets its rows (in memory and stored)."""
        try:
            check_batch_id(batch_id)
            return BatchSummary(batch_id=batch_id, rows=self.store.forget(batch_id), time_h=None)
        except RowsRefused as refused:
            return self._refuse(refused.status, refused.message, refused.body())
        except Exception as exc:  # the database cannot delete now: nothing is forgotten half
            log.exception("ending batch %s failed", batch_id)
            return self._refuse(503, f"the batch's stored rows cannot be deleted now: {exc}")

    def _held_frame(self, batch_id: str) -> Any:
        with self.store.open(batch_id) as history:
            return history.frame()

    def _run_later(self, shadows: list[Shadow]) -> None:
        for shadow in shadows:  # only once every answer is ready: they never delay it
            self.background.submit(shadow)

    def _refuse(self, status: int, message: str, body: dict[str, Any] | None = None) -> Any:
        """An error answer with its reason (BentoML passes a Response through as it is)."""
        metrics.REJECTED.labels(str(status)).inc()
        return JSONResponse(body or {"error": message}, status_code=status)

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
        """Poll the aliases and rollouts, so a change made anywhere reaches this service; once
        an hour, delete stored rows of batches long finished."""
        purged = -3600.0
        while not self.stopping.wait(self.settings.serving.poll_seconds):
            try:
                if wanted_now(self.settings) != self.deployment.wanted():
                    self.reload()
            except Exception:
                log.exception("checking the registry failed; trying again")
            if time.monotonic() - purged > 3600:
                try:
                    self.store.purge()
                    purged = time.monotonic()
                except Exception:
                    log.exception("deleting old stored batch rows failed; trying again")

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
