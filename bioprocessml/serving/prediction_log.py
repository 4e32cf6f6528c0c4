"""Every prediction the service makes (served or shadow), and the paired live errors a finished
batch's offline titer gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Engine, func, insert, select

from bioprocessml.dataset import TIME
from bioprocessml.serving.db import now, predictions
from models.base import Task

Role = Literal["champion", "challenger"]
Route = Literal["champion", "canary"]


class LoggedPrediction(BaseModel):
    """One model's answer to one request (`mean` is None when the model failed)."""

    request_id: str
    batch_id: str
    task: Task
    model_version: str
    role: Role
    route: Route
    served: bool
    batch_time_h: float
    mean: float | None
    lower: float | None
    upper: float | None
    error: str | None = None
    latency_ms: float


def record(engine: Engine, rows: list[LoggedPrediction]) -> None:
    if not rows:
        return
    stamp = now()
    with engine.begin() as conn:
        conn.execute(insert(predictions), [{**r.model_dump(), "created_at": stamp} for r in rows])


def batch_predictions(
    engine: Engine, batch_id: str, task: Task, versions: list[str], since: datetime
) -> pd.DataFrame:
    """Successful predictions of `versions` for one batch since a rollout began."""
    query = select(
        predictions.c.request_id,
        predictions.c.model_version,
        predictions.c.batch_time_h,
        predictions.c.mean,
    ).where(
        predictions.c.batch_id == batch_id,
        predictions.c.task == task,
        predictions.c.model_version.in_(versions),
        predictions.c.error.is_(None),
        predictions.c.created_at >= since,
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=["request_id", "model_version", "batch_time_h", "mean"])


def canary_answers(engine: Engine, batch_id: str, task: Task, version: str, since: datetime) -> int:
    """Answers of the challenger `version` that users received for this batch (canary route):
    the evidence a promotion needs, as opposed to shadow predictions nobody saw."""
    query = select(func.count()).where(
        predictions.c.batch_id == batch_id,
        predictions.c.task == task,
        predictions.c.model_version == version,
        predictions.c.role == "challenger",
        predictions.c.route == "canary",
        predictions.c.served.is_(True),
        predictions.c.error.is_(None),
        predictions.c.created_at >= since,
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def failure_counts(engine: Engine, task: Task, version: str, since: datetime) -> tuple[int, int]:
    """(predictions, failures) of one model version since a time."""
    query = select(func.count(), func.count(predictions.c.error)).where(
        predictions.c.task == task,
        predictions.c.model_version == version,
        predictions.c.created_at >= since,
    )
    with engine.connect() as conn:
        total, failed = conn.execute(query).one()
    return int(total), int(failed)


def truth_at(batch: pd.DataFrame, target: str, task: Task, times: pd.Series) -> pd.Series:
    """The offline titer a prediction is judged against: for the soft sensor the assays
    interpolated at the prediction time (NaN outside the sampled span), for the harvest
    forecast the batch's last assay."""
    assays = batch[[TIME, target]].dropna().sort_values(TIME)
    if assays.empty:
        return pd.Series(np.nan, index=times.index)
    if task == "harvest":
        return pd.Series(float(assays[target].iloc[-1]), index=times.index)
    t, y = assays[TIME].to_numpy(float), assays[target].to_numpy(float)
    values = np.interp(times.to_numpy(float), t, y, left=np.nan, right=np.nan)
    return pd.Series(values, index=times.index)


def paired_batch_error(
    logged: pd.DataFrame, batch: pd.DataFrame, target: str, task: Task, champion: str,
    challenger: str,
) -> tuple[float, float, int] | None:  # fmt: skip
    """Mean absolute error of champion and challenger over the requests both answered for
    this batch, and how many there were; None when no request can be paired and judged."""
    if logged.empty:
        return None
    wide = logged.pivot_table(
        index=["request_id", "batch_time_h"], columns="model_version", values="mean"
    ).reset_index()
    if champion not in wide or challenger not in wide:
        return None
    wide["truth"] = truth_at(batch, target, task, wide["batch_time_h"])
    wide = wide.dropna(subset=[champion, challenger, "truth"])
    if wide.empty:
        return None
    champion_error = float((wide[champion] - wide["truth"]).abs().mean())
    challenger_error = float((wide[challenger] - wide["truth"]).abs().mean())
    return champion_error, challenger_error, len(wide)
