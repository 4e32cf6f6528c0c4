"""The chain's contract: event names, resource ids and payload models.

Each stage is started by a Prefect deployment trigger on one of these events (see prefect.yaml),
so the payloads are the stages' public inputs and are validated with pydantic on both sides.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import PurePath

from pydantic import BaseModel, Field

BATCH_ARRIVED = "bioprocess.batch.arrived"
BATCH_ACCEPTED = "bioprocess.batch.accepted"
BATCH_QUARANTINED = "bioprocess.batch.quarantined"
DRIFT_DETECTED = "bioprocess.drift.detected"
MODEL_CHALLENGER = "bioprocess.model.challenger"
MODEL_PROMOTED = "bioprocess.model.promoted"
MODEL_ROLLED_BACK = "bioprocess.model.rolled_back"
STACK_PROBE = "bioprocess.stack.probe"


class ProbePayload(BaseModel):
    """A probe of the stack's event → flow-run latency (benchmarks/pace.py)."""

    sent: str = Field(description="when it was sent, ISO 8601")


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
    worse_than_naive: list[str] = Field(
        [], description="`task:version` of live champions worse than the naive forecast"
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


MAX_NAME = 100


def safe_name(text: str) -> str:
    """A name usable as a file name and a resource-id segment: no path separator, no leading
    dot, and short (a long one keeps its start and a hash of the whole), so no batch id or file
    name can lead outside its folder or past the file system's name limit."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text).strip(".") or "batch"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{name[: MAX_NAME - 13]}-{digest}"


def arrival_resource(relative: str) -> dict[str, str]:
    return batch_resource(safe_name(PurePath(relative).stem))


def post_event(
    api_url: str, event: str, resource: dict[str, str], payload: BaseModel, event_id: str,
    timeout: float = 10.0,
) -> str:  # fmt: skip
    """Send one event to the Prefect server and wait for its answer: unlike `emit` (which
    queues and may drop it when the server is away), a failure here raises, so the sender
    knows the event is not there and keeps the arrival to send again."""
    import httpx

    body = [{
        "id": event_id, "occurred": datetime.now(UTC).isoformat(), "event": event,
        "resource": resource, "payload": payload.model_dump(mode="json"), "related": [],
    }]  # fmt: skip
    response = httpx.post(f"{api_url.rstrip('/')}/events", json=body, timeout=timeout)
    response.raise_for_status()
    return event_id


def emit(event: str, resource: dict[str, str], payload: BaseModel) -> str | None:
    """Emit a chain event to the Prefect API in the environment; returns the event id."""
    from prefect.events import emit_event

    sent = emit_event(event=event, resource=resource, payload=payload.model_dump(mode="json"))
    return str(sent.id) if sent is not None else None
