"""What the plant page shows, read from the stores the pipeline already keeps: the prediction log
(titer-now trajectories, 95 % bands, harvest forecasts), accepted files and recent requests
(lab assays), the rollout store (stage changes), the catalogue (quarantines with reasons) and
the monitoring records (drift and concept alarms)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from bioprocessml.dataset import TIME
from bioprocessml.serving.db import predictions
from bioprocessml.serving.rollout_store import transitions
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec

RECENT_BATCHES = 6
RECENT_EVENTS = 12


class Point(BaseModel):
    time_h: float
    mean: float
    lower: float
    upper: float


class BatchView(BaseModel):
    batch_id: str
    status: str  # running | finished (accepted file in)
    titer_now: list[Point]
    assays: list[tuple[float, float]]
    harvest: Point | None
    versions: list[str]


def recent_batch_ids(engine: Engine, limit: int = RECENT_BATCHES) -> list[str]:
    """Batches with the newest served answers, newest first."""
    newest = func.max(predictions.c.id)
    query = (
        select(predictions.c.batch_id, newest)
        .where(predictions.c.served)
        .group_by(predictions.c.batch_id)
        .order_by(newest.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [str(row[0]) for row in conn.execute(query)]


def served_points(engine: Engine, batch_id: str, task: str) -> pd.DataFrame:
    query = (
        select(
            predictions.c.batch_time_h,
            predictions.c.mean,
            predictions.c.lower,
            predictions.c.upper,
            predictions.c.model_version,
        )
        .where(
            predictions.c.batch_id == batch_id,
            predictions.c.task == task,
            predictions.c.served,
            predictions.c.mean.is_not(None),
        )
        .order_by(predictions.c.id)
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all())
    if frame.empty:
        return frame
    return frame.groupby("batch_time_h", as_index=False).last().sort_values("batch_time_h")


def assays_of(frame: pd.DataFrame | None, target: str) -> list[tuple[float, float]]:
    """(batch time, lab value) of the target's assays in a canonical frame."""
    if frame is None or target not in frame:
        return []
    seen = frame[[TIME, target]].dropna()
    return [(float(t), float(y)) for t, y in seen.itertuples(index=False)]


def batch_view(
    engine: Engine,
    batch_id: str,
    settings: Settings,
    spec: DatasetSpec,
    latest: Callable[[], pd.DataFrame] | None,
) -> BatchView:
    now = served_points(engine, batch_id, "soft_sensor")
    harvest = served_points(engine, batch_id, "harvest")
    accepted = settings.accepted_dir / f"{batch_id}.csv"
    finished = accepted.is_file()
    frame = pd.read_csv(accepted) if finished else (latest() if latest else None)
    points = (
        [
            Point(**r)
            for r in now[["batch_time_h", "mean", "lower", "upper"]]
            .rename(columns={"batch_time_h": "time_h"})
            .to_dict("records")
        ]
        if len(now)
        else []
    )
    last = harvest.iloc[-1] if len(harvest) else None
    return BatchView(
        batch_id=batch_id,
        status="finished" if finished else "running",
        titer_now=points,
        assays=assays_of(frame, spec.target),
        harvest=None
        if last is None
        else Point(
            time_h=float(last.batch_time_h),
            mean=float(last["mean"]),
            lower=float(last.lower),
            upper=float(last.upper),
        ),
        versions=sorted({str(v) for v in now.get("model_version", [])}),
    )


def alarms(reports_dir: Path, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    """Monitoring records that alarmed or asked for retraining, newest first."""
    if not reports_dir.is_dir():
        return []
    records = [json.loads(p.read_text()) for p in reports_dir.glob("*.json")]
    hot = [
        r for r in records if r.get("data_drift") or r.get("concept_alarm") or r.get("requested")
    ]
    hot.sort(key=lambda r: r.get("checked_at", ""), reverse=True)
    return [
        {
            "batch_id": r["batch_id"],
            "at": r.get("checked_at"),
            "kind": r.get("kind") or ("data drift" if r.get("data_drift") else "concept"),
            "reasons": r.get("reasons", []),
        }
        for r in hot[:limit]
    ]


def quarantines(settings: Settings, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    path = settings.data_dir / "catalogue.db"
    if not path.is_file():
        return []
    from bioprocessml.ingest.catalogue import Catalogue

    bad = [e for e in Catalogue(path).entries() if e.verdict == "quarantined"]
    bad.sort(key=lambda e: e.received_at, reverse=True)
    return [
        {"file": e.file, "at": e.received_at.isoformat(), "reasons": e.reasons} for e in bad[:limit]
    ]


def stage_changes(engine: Engine, limit: int = RECENT_EVENTS) -> list[dict[str, Any]]:
    changes = sorted(transitions(engine), key=lambda t: t.at, reverse=True)[:limit]
    return [t.model_dump(mode="json") for t in changes]


def coverage(points: list[Point], assays: list[tuple[float, float]]) -> float | None:
    """Share of assays inside the 95 % band interpolated at their times (None without both)."""
    if not points or not assays:
        return None
    t = np.array([p.time_h for p in points])
    inside = [
        np.interp(at, t, [p.lower for p in points])
        <= y
        <= np.interp(at, t, [p.upper for p in points])
        for at, y in assays
        if t[0] <= at <= t[-1]
    ]
    return float(np.mean(inside)) if inside else None
