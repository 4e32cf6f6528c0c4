"""The prediction API's contract: request rows checked against the dataset spec, the response
with both titers and their 95 % intervals, and the stable canary routing of batches."""

from __future__ import annotations

import hashlib
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from bioprocessml.dataset import TIME, to_spec_frame
from bioprocessml.serving.rows import Cell, InputError, check_rows
from bioprocessml.spec import DatasetSpec

Route = Literal["champion", "canary"]
__all__ = ["Cell", "InputError", "PredictResponse", "TaskAnswer", "request_frame", "route_for"]


class TaskAnswer(BaseModel):
    mean: float
    lower: float = Field(description="2.5 % quantile")
    upper: float = Field(description="97.5 % quantile")
    unit: str
    model: str = Field(description="registered model name")
    version: str
    route: Route = Field(description="champion, or canary when this batch gets the challenger")
    mode: str | None = Field(
        None,
        description="for a model with modes, which answered: 'assays' (corrected by this "
        "batch's titer assays) or 'online' (online signals only); null otherwise",
    )


class PredictResponse(BaseModel):
    request_id: str
    batch_id: str
    time_h: float = Field(description="batch time of the last row: the prediction's 'now'")
    titer_now: TaskAnswer | None = Field(description="null when the soft sensor has no champion")
    titer_at_harvest: TaskAnswer | None = Field(
        description="null when the harvest forecast has no champion"
    )
    unavailable: dict[str, str] = Field(
        {}, description="for each answer that is null, why (e.g. no model beat the naive forecast)"
    )


def canary_bucket(batch_id: str) -> float:
    """A stable number in [0, 1) per batch id: a batch sticks to one model for its whole run."""
    return int.from_bytes(hashlib.sha256(batch_id.encode()).digest()[:8], "big") / 2**64


def route_for(batch_id: str, stage: str | None, share: float) -> Route:
    return "canary" if stage == "canary" and canary_bucket(batch_id) < share else "champion"


def request_frame(
    batch_id: str, rows: list[dict[str, Cell]], spec: DatasetSpec, max_rows: int
) -> pd.DataFrame:
    """The batch so far as a canonical frame (the models' input), or InputError saying what is
    wrong (see `bioprocessml.serving.rows.check_rows`)."""
    return check_rows(batch_id, rows, spec, max_rows).frame()


def request_rows(batch: pd.DataFrame, spec: DatasetSpec, upto_h: float) -> list[dict[str, Cell]]:
    """A canonical batch's rows up to a time as a client sends them: the spec's columns and
    units, missing values as null (the demo's client, the tests and the benchmark use it)."""
    part = to_spec_frame(batch[batch[TIME] <= upto_h], spec)
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in part.to_dict(orient="records")
    ]
