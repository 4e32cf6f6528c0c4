"""Rows a client sends, checked against the dataset spec and converted to canonical columns:
numpy over each column, Python only to take the values out of the JSON rows.

Only the time and the online channels are required: offline assays (the target included) may
be left out, as a plant's online client has none of them. A column of plain numbers takes a
fast path; one with text in it is parsed as a batch file's column is (decimal mark, spaces),
so `"7.2"` and `7.2` mean the same and `"abc"` is reported with its row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME, to_number
from bioprocessml.errors import BioprocessMLError
from bioprocessml.events import safe_name
from bioprocessml.spec import DatasetSpec
from bioprocessml.units import DATETIME, get_unit, read_timestamps, to_canonical
from models.base import FloatArray

Cell = float | int | str | None
NUMBERS = frozenset({float, int, type(None)})


class InputError(BioprocessMLError):
    """Rows the dataset spec rejects (answered with 422 and this message)."""


@dataclass
class CheckedRows:
    """Rows of one batch in canonical names and units: every spec variable (NaN where not
    sent), metadata as text ('' where not sent); `origin` is the first time stamp when the
    spec's time is a date-time (elapsed hours count from it)."""

    batch_id: str
    time: FloatArray
    values: dict[str, FloatArray]
    metadata: dict[str, list[str]] = field(default_factory=dict)
    origin: pd.Timestamp | None = None

    def __len__(self) -> int:
        return len(self.time)

    def frame(self) -> pd.DataFrame:
        """The canonical frame (`bioprocessml.dataset.canonical_frame`'s layout)."""
        columns: dict[str, Any] = {BATCH_ID: [self.batch_id] * len(self), TIME: self.time}
        return pd.DataFrame({**columns, **self.values, **self.metadata})


def check_rows(
    batch_id: str, rows: list[dict[str, Cell]], spec: DatasetSpec, max_rows: int,
    origin: pd.Timestamp | None = None,
) -> CheckedRows:  # fmt: skip
    """The rows as canonical columns, or InputError saying what is wrong: unknown or missing
    columns, text where a number belongs, time missing or going backwards, or a value outside
    the spec's plausible range. `origin`: the batch's first time stamp, when continuing it."""
    if safe_name(batch_id) != batch_id:
        raise InputError(f"batch_id {batch_id!r}: use letters, digits, '_', '-' and '.' only")
    if not 1 <= len(rows) <= max_rows:
        raise InputError(f"rows: send 1 to {max_rows} rows of the batch so far, got {len(rows)}")
    sent: set[str] = set().union(*rows)
    known = spec.file_columns
    unknown = sorted(sent - set(known))
    if unknown:
        raise InputError(f"unknown columns {unknown}; the dataset spec {spec.name!r} has {known}")
    cells = {column: [row.get(column) for row in rows] for column in known if column in sent}
    _check_batch_ids(batch_id, cells, spec)
    required = [spec.time.column, *[v.column for v in spec.online if not v.optional]]
    missing = [column for column in required if column not in cells]
    if missing:
        raise InputError(f"required columns missing: {missing}")
    time, origin = _time(cells[spec.time.column], spec, origin)
    values = _variables(cells, spec, len(rows))
    if np.isnan(time).any():
        raise InputError(f"{spec.time.column}: every row needs a time")
    back = np.flatnonzero(np.diff(time) < 0)
    if len(back):
        raise InputError(f"{spec.time.column}: time goes backwards at row {int(back[0]) + 1}")
    metadata = {m.name: _text(cells.get(m.column), len(rows)) for m in spec.metadata}
    return CheckedRows(batch_id, time, values, metadata, origin)


def _check_batch_ids(batch_id: str, cells: dict[str, list[Cell]], spec: DatasetSpec) -> None:
    column = spec.batch_id.column
    if column and column in cells:
        given = {str(v) for v in cells[column] if v is not None and v == v}
        if given - {batch_id}:
            raise InputError(f"column {column!r} must equal batch_id {batch_id!r} in every row")


def _numbers(values: list[Cell], decimal: str) -> tuple[FloatArray, np.ndarray]:
    """Numbers (NaN where missing) and which cells were given (not null)."""
    if set(map(type, values)) <= NUMBERS:
        numbers = np.array(values, dtype=float)  # None → NaN
        return numbers, ~np.isnan(numbers)
    text = pd.Series([_as_text(v) for v in values], dtype=object)
    return to_number(text, decimal).to_numpy(dtype=float), text.notna().to_numpy()


def _as_text(value: Cell) -> str | None:
    return None if value is None or value != value else str(value)


def _unreadable(column: str, values: list[Cell], given: np.ndarray, numbers: FloatArray) -> None:
    bad = given & ~np.isfinite(numbers)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{column}: row {row}: {_as_text(values[row])!r} is not a number")


def _time(
    values: list[Cell], spec: DatasetSpec, origin: pd.Timestamp | None
) -> tuple[FloatArray, pd.Timestamp | None]:
    """Elapsed hours; a date-time counts from `origin` (or the earliest stamp sent)."""
    column = spec.time.column
    if spec.time.unit != DATETIME:
        numbers, given = _numbers(values, spec.csv.decimal)
        _unreadable(column, values, given, numbers)
        return to_canonical(numbers, spec.time.unit), None
    text = pd.Series([_as_text(v) for v in values], dtype=object)
    stamps = read_timestamps(text, spec.time.format)
    bad = text.notna() & stamps.isna()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        how = spec.time.format or (
            "ISO 8601 (e.g. 2026-03-04T08:00:00Z) or one unambiguous pattern (the spec's "
            "time.format can name it)"
        )
        raise InputError(f"{column}: row {row}: {text.iloc[row]!r} is not a timestamp in {how}")
    origin = stamps.min() if origin is None else origin
    return ((stamps - origin).dt.total_seconds() / 3600.0).to_numpy(dtype=float), origin


@dataclass(frozen=True)
class _Columns:
    """A spec's variables as arrays (column names, canonical units, plausible ranges)."""

    spec: DatasetSpec
    scale: FloatArray
    offset: FloatArray
    low: FloatArray
    high: FloatArray


_COLUMNS: dict[int, _Columns] = {}


def _columns_of(spec: DatasetSpec) -> _Columns:
    found = _COLUMNS.get(id(spec))
    if found is None or found.spec is not spec:
        units = [get_unit(v.unit) for v in spec.variables]
        ranges = [v.canonical_range or (np.nan, np.nan) for v in spec.variables]
        found = _Columns(
            spec, np.array([u.scale for u in units]), np.array([u.offset for u in units]),
            np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges]),
        )  # fmt: skip
        _COLUMNS[id(spec)] = found
    return found


def _variables(cells: dict[str, list[Cell]], spec: DatasetSpec, n: int) -> dict[str, FloatArray]:
    """Every variable in its canonical unit (NaN where not sent), all sent ones at once as one
    (variables x rows) array; the first column in spec order with an unreadable or implausible
    value is reported."""
    index = [i for i, v in enumerate(spec.variables) if v.column in cells]
    sent = [spec.variables[i] for i in index]
    columns = [cells[v.column] for v in sent]
    if set(map(type, chain.from_iterable(columns))) <= NUMBERS:
        numbers = np.array(columns, dtype=float).reshape(len(sent), n)  # None → NaN
        given = ~np.isnan(numbers)
    else:  # text somewhere: parsed column by column as a file's columns are
        parsed = [_numbers(c, spec.csv.decimal) for c in columns]
        numbers = np.array([p[0] for p in parsed]).reshape(len(sent), n)
        given = np.array([p[1] for p in parsed]).reshape(len(sent), n)
    arrays = _columns_of(spec)
    canonical = numbers * arrays.scale[index, None] + arrays.offset[index, None]
    unreadable = given & ~np.isfinite(numbers)
    outside = (canonical < arrays.low[index, None]) | (canonical > arrays.high[index, None])
    wrong = np.flatnonzero(unreadable.any(axis=1) | outside.any(axis=1))
    if len(wrong):
        i = int(wrong[0])
        _unreadable(sent[i].column, columns[i], given[i], numbers[i])
        row = int(np.flatnonzero(outside[i])[0])
        raise InputError(
            f"{sent[i].column}: {int(outside[i].sum())} value(s) outside the plausible range "
            f"of the dataset spec, e.g. row {row}: {_as_text(columns[i][row])}"
        )
    out = dict(zip((v.name for v in sent), canonical, strict=True))
    return {v.name: out[v.name] if v.name in out else np.full(n, np.nan) for v in spec.variables}


def _text(values: list[Cell] | None, n: int) -> list[str]:
    return [""] * n if values is None else [_as_text(v) or "" for v in values]
