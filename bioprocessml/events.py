"""The chain's contract: event names, resource ids and payload models.

Each stage is started by a Prefect deployment trigger on one of these events (see prefect.yaml),
so the payloads are the stages' public inputs and are validated with pydantic on both sides.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from pydantic import BaseModel, Field

BATCH_ARRIVED = "bioprocess.batch.arrived"
BATCH_ACCEPTED = "bioprocess.batch.accepted"
BATCH_QUARANTINED = "bioprocess.batch.quarantined"
DRIFT_DETECTED = "bioprocess.drift.detected"
MODEL_CHALLENGER = "bioprocess.model.challenger"
MODEL_PROMOTED = "bioprocess.model.promoted"
MODEL_ROLLED_BACK = "bioprocess.model.rolled_back"


class ArrivedPayload(BaseModel):
    """A file in the incoming folder is complete and ready to be judged."""

    path: str = Field(description="path relative to the incoming folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class AcceptedPayload(BaseModel):
    batch_id: str
    sha256: str
    data_version: str = Field(description="DVC md5 of data/accepted after this batch")
    path: str = Field(description="normalized copy, relative to the data folder")
    warnings: list[str] = []


class QuarantinedPayload(BaseModel):
    quarantine_id: str
    file: str
    sha256: str
    reasons: list[str]


class DriftPayload(BaseModel):
    """Why retraining is asked for: data drift, concept drift, or bootstrap (no champion yet)."""

    batch_id: str
    kind: str = Field(description="data | concept | data+concept | bootstrap | deferred")
    reasons: list[str]
    data_version: str | None = None
    tasks: list[str] = Field(
        ["soft_sensor", "harvest"], description="tasks to retrain: those with no live rollout"
    )


class ChallengerPayload(BaseModel):
    task: str
    model: str = Field(description="registered model name")
    version: str
    run_id: str
    candidate: str
    reason: str
    metrics: dict[str, float] = {}


class StagePayload(BaseModel):
    """A rollout ended: the challenger was promoted or rolled back (notifications react)."""

    task: str
    model: str = Field(description="registered model name")
    version: str = Field(description="the challenger's version")
    champion_version: str = Field(description="the champion it was compared with")
    stage: str = Field(description="promoted | rolled_back")
    reason: str
    batch_id: str | None = None


def model_resource(name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"bioprocess.model.{name}", "prefect.resource.name": name}


def batch_resource(key: str) -> dict[str, str]:
    """Resource of a batch event: `bioprocess.batch.<key>`, the key being the file stem or id."""
    return {"prefect.resource.id": f"bioprocess.batch.{key}", "prefect.resource.name": key}


def safe_name(text: str) -> str:
    """A name usable as a file name and a resource-id segment."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text).strip(".") or "batch"


def announce_arrival(relative: str, sha256: str, size: int) -> str | None:
    """Emit `bioprocess.batch.arrived` for a complete file in the incoming folder."""
    payload = ArrivedPayload(path=relative, sha256=sha256, size=size)
    return emit(BATCH_ARRIVED, batch_resource(safe_name(PurePath(relative).stem)), payload)


def emit(event: str, resource: dict[str, str], payload: BaseModel) -> str | None:
    """Emit a chain event to the Prefect API in the environment; returns the event id."""
    from prefect.events import emit_event

    sent = emit_event(event=event, resource=resource, payload=payload.model_dump(mode="json"))
    return str(sent.id) if sent is not None else None
