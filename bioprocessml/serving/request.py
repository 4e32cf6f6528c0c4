"""The prediction API's contract: request rows checked against the dataset spec, the response
with both titers and their 95 % intervals, and the stable canary routing of batches."""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from bioprocessml.dataset import TIME, canonical_frame, to_spec_frame
from bioprocessml.errors import BatchLoadError, BioprocessMLError
from bioprocessml.events import safe_name
from bioprocessml.spec import DatasetSpec

Route = Literal["champion", "canary"]
Cell = float | int | str | None


class InputError(BioprocessMLError):
    """A /predict request the dataset spec rejects (answered with 422 and this message)."""


class TaskAnswer(BaseModel):
    mean: float
    lower: float = Field(description="2.5 % quantile")
    upper: float = Field(description="97.5 % quantile")
    unit: str
    model: str = Field(description="registered model name")
    version: str
    route: Route = Field(description="champion, or canary when this batch gets the challenger")


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
    wrong: unknown or missing columns, text where a number belongs, time going backwards, or a
    value outside the spec's plausible range."""
    if safe_name(batch_id) != batch_id:
        raise InputError(f"batch_id {batch_id!r}: use letters, digits, '_', '-' and '.' only")
    if not 1 <= len(rows) <= max_rows:
        raise InputError(f"rows: send 1 to {max_rows} rows of the batch so far, got {len(rows)}")
    known = spec.file_columns
    unknown = sorted({key for row in rows for key in row} - set(known))
    if unknown:
        raise InputError(f"unknown columns {unknown}; the dataset spec {spec.name!r} has {known}")
    raw = pd.DataFrame(rows, columns=[c for c in known if any(c in row for row in rows)])
    raw = raw.map(lambda v: None if v is None or v != v else str(v)).astype(object)  # NaN: empty
    id_column = spec.batch_id.column
    if id_column and id_column in raw and set(raw[id_column].dropna()) - {batch_id}:
        raise InputError(f"column {id_column!r} must equal batch_id {batch_id!r} in every row")
    try:
        frame = canonical_frame(raw, spec, batch_id)
    except BatchLoadError as exc:
        raise InputError(str(exc)) from None
    _check_numbers(raw, frame, spec)
    for meta in spec.metadata:
        frame[meta.name] = frame[meta.name].fillna("").astype(str)
    return frame


def _check_numbers(raw: pd.DataFrame, frame: pd.DataFrame, spec: DatasetSpec) -> None:
    columns: list[tuple[str, str, tuple[float, float] | None]] = [(spec.time.column, TIME, None)]
    columns += [(v.column, v.name, v.canonical_range) for v in spec.variables if v.column in raw]
    for column, name, bounds in columns:
        given, values = raw[column].notna(), frame[name]
        unreadable = given & values.isna()
        if unreadable.any():
            row = int(np.flatnonzero(unreadable)[0])
            raise InputError(f"{column}: row {row}: {raw[column].iloc[row]!r} is not a number")
        if bounds is not None:
            low, high = bounds
            outside = (values < low) | (values > high)
            if outside.any():
                row = int(np.flatnonzero(outside)[0])
                raise InputError(
                    f"{column}: {int(outside.sum())} value(s) outside the plausible range of "
                    f"the dataset spec, e.g. row {row}: {raw[column].iloc[row]}"
                )
    time = frame[TIME]
    if time.isna().any():
        raise InputError(f"{spec.time.column}: every row needs a time")
    if (time.diff().dropna() < 0).any():
        row = int(np.flatnonzero(time.diff() < 0)[0])
        raise InputError(f"{spec.time.column}: time goes backwards at row {row}")


def request_rows(batch: pd.DataFrame, spec: DatasetSpec, upto_h: float) -> list[dict[str, Cell]]:
    """A canonical batch's rows up to a time as a client sends them: the spec's columns and
    units, missing values as null (the demo's client, the tests and the benchmark use it)."""
    part = to_spec_frame(batch[batch[TIME] <= upto_h], spec)
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in part.to_dict(orient="records")
    ]
