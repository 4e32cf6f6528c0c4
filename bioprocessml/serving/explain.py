"""`/explain`: the SHAP values of the answer `/predict` gives for the same rows, from the model
that serves the batch (champion, or the challenger for a canary batch).

A separate path on purpose: explaining costs tens to hundreds of milliseconds a task, which
`/predict` never pays. Nothing is logged to the prediction log (it would count as evidence in a
rollout).
"""

from __future__ import annotations

import logging

import pandas as pd
from pydantic import BaseModel, Field

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.serving.deployed import Deployment, Slot, TaskModels
from bioprocessml.serving.request import Route, route_for
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.attribution import Explanation
from models.base import Task

log = logging.getLogger(__name__)
TASK_FIELDS: dict[Task, str] = {"soft_sensor": "titer_now", "harvest": "titer_at_harvest"}


class TaskExplanation(BaseModel):
    model: str = Field(description="registered model name")
    version: str
    route: Route
    explanation: Explanation | None = None
    error: str | None = Field(None, description="why this answer could not be explained")


class ExplainResponse(BaseModel):
    batch_id: str
    time_h: float = Field(description="batch time of the last row: the answer's 'now'")
    titer_now: TaskExplanation | None = None
    titer_at_harvest: TaskExplanation | None = None
    unavailable: dict[str, str] = {}


def serving_slot(models: TaskModels, batch_id: str, share: float) -> tuple[Slot, Route]:
    """The model whose answer the batch gets (the routing of `/predict`)."""
    assert models.champion is not None
    route = route_for(batch_id, models.wanted.stage, share) if models.challenger else "champion"
    if route == "canary" and models.challenger is not None:
        return models.challenger, route
    return models.champion, "champion"


def explain_slot(
    slot: Slot, route: Route, frame: pd.DataFrame, spec: DatasetSpec
) -> TaskExplanation:
    from models.explain import explain
    from models.registry import split_histories

    out = TaskExplanation(model=slot.name, version=slot.version, route=route)
    try:
        candidate = slot.model.unwrap_python_model().candidate
        out.explanation = explain(candidate, split_histories(frame)[0], spec)
    except Exception as exc:  # an unexplainable model still answers /predict
        log.exception("explaining %s version %s failed", slot.name, slot.version)
        out.error = f"{type(exc).__name__}: {exc}"
    return out


def explain_frame(
    deployment: Deployment, frame: pd.DataFrame, spec: DatasetSpec, settings: Settings
) -> ExplainResponse:
    """Explanations of every task that has a champion; the others say why not."""
    batch_id = str(frame[BATCH_ID].iloc[0])
    response = ExplainResponse(batch_id=batch_id, time_h=float(frame[TIME].iloc[-1]))
    for task, models in deployment.tasks.items():
        field = TASK_FIELDS[task]
        if models.champion is None:
            response.unavailable[field] = models.wanted.reason or f"no {task} champion yet"
            continue
        slot, route = serving_slot(models, batch_id, settings.rollout.canary_share)
        setattr(response, field, explain_slot(slot, route, frame, spec))
    return response
