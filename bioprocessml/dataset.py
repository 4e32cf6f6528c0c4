"""Reading and writing batch files through a dataset spec.

The *canonical frame* of a batch has columns `batch_id`, `time` (hours from batch start), one
column per spec variable under its canonical name and canonical unit, and the metadata columns.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bioprocessml.errors import BatchLoadError
from bioprocessml.spec import DatasetSpec, TimeSpec
from bioprocessml.units import DATETIME, from_canonical, read_timestamps, to_canonical

BATCH_ID = "batch_id"
TIME = "time"


def canonical_columns(spec: DatasetSpec) -> list[str]:
    return [BATCH_ID, TIME, *[v.name for v in spec.variables], *[m.name for m in spec.metadata]]


def batch_id_from_filename(path: Path, spec: DatasetSpec) -> str:
    pattern = spec.batch_id.filename_pattern
    assert pattern is not None
    match = re.search(pattern, path.name)
    if match is None:
        raise BatchLoadError(f"file name does not match batch id pattern {pattern!r}")
    return match.group("batch_id")


def read_raw(path: Path, spec: DatasetSpec) -> pd.DataFrame:
    """Read a file with the spec's CSV dialect; every value as text, nothing inferred yet."""
    fmt = spec.csv
    try:
        return pd.read_csv(
            path, sep=fmt.delimiter, encoding=fmt.encoding, dtype=str, keep_default_na=True
        )
    except FileNotFoundError:
        raise BatchLoadError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise BatchLoadError(f"{path.name}: not {fmt.encoding} text ({exc.reason})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise BatchLoadError(f"{path.name}: not a readable CSV: {exc}".strip()) from None


def to_number(values: pd.Series, decimal: str) -> pd.Series:
    text = values.str.strip()
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce")


def _elapsed_hours(raw: pd.Series, time: TimeSpec, decimal: str) -> pd.Series:
    if time.unit == DATETIME:
        stamps = read_timestamps(raw, time.format)
        return (stamps - stamps.min()).dt.total_seconds() / 3600.0
    return pd.Series(to_canonical(to_number(raw, decimal), time.unit), index=raw.index)


def canonical_frame(raw: pd.DataFrame, spec: DatasetSpec, batch_id: str) -> pd.DataFrame:
    """Map a raw text frame onto canonical names and units. Unparseable numbers become NaN,
    so the validation stage can count and report them rather than crash."""
    missing = [
        col
        for col, optional in [
            (spec.time.column, False),
            *[(v.column, v.optional) for v in spec.variables],
        ]
        if not optional and col not in raw.columns
    ]
    if missing:
        raise BatchLoadError(f"required columns missing: {missing}")
    decimal = spec.csv.decimal
    out = pd.DataFrame(index=raw.index)
    out[BATCH_ID] = batch_id
    out[TIME] = _elapsed_hours(raw[spec.time.column], spec.time, decimal)
    for var in spec.variables:
        if var.column in raw.columns:
            out[var.name] = to_canonical(to_number(raw[var.column], decimal), var.unit)
        else:
            out[var.name] = np.nan
    for meta in spec.metadata:
        out[meta.name] = raw[meta.column] if meta.column in raw.columns else None
    return out.reset_index(drop=True)


def resolve_batch_id(raw: pd.DataFrame, path: Path, spec: DatasetSpec) -> str:
    column = spec.batch_id.column
    if column is None:
        return batch_id_from_filename(path, spec)
    if column not in raw.columns:
        raise BatchLoadError(f"required columns missing: [{column!r}] (batch id)")
    ids = raw[column].dropna().str.strip().unique()
    if len(ids) != 1:
        raise BatchLoadError(f"batch id column {column!r} must hold one id, found {list(ids)[:5]}")
    return str(ids[0])


def load_batch(path: str | Path, spec: DatasetSpec) -> pd.DataFrame:
    """Load one batch file as a canonical frame, raising BatchLoadError on what cannot be read."""
    path = Path(path)
    raw = read_raw(path, spec)
    try:
        return canonical_frame(raw, spec, resolve_batch_id(raw, path, spec))
    except BatchLoadError as exc:
        raise BatchLoadError(f"{path.name}: {exc}") from None


def load_batches(paths: list[Path], spec: DatasetSpec) -> pd.DataFrame:
    return pd.concat([load_batch(p, spec) for p in paths], ignore_index=True)


def to_spec_frame(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Inverse of `canonical_frame`: a canonical frame in the spec's column names and units."""
    out = pd.DataFrame(index=frame.index)
    if spec.batch_id.column:
        out[spec.batch_id.column] = frame[BATCH_ID]
    if spec.time.unit == DATETIME:
        start = pd.Timestamp("2026-01-01T00:00:00Z")
        stamps = (start + pd.to_timedelta(frame[TIME], unit="h")).dt.round("s")
        out[spec.time.column] = stamps.dt.strftime(spec.time.format or "%Y-%m-%dT%H:%M:%SZ")
    else:
        out[spec.time.column] = from_canonical(frame[TIME], spec.time.unit)
    for var in spec.variables:
        out[var.column] = from_canonical(frame[var.name], var.unit)
    for meta in spec.metadata:
        out[meta.column] = frame[meta.name]
    return out


def write_batch(frame: pd.DataFrame, path: Path, spec: DatasetSpec) -> Path:
    """Write a canonical frame as a file in the spec's format (names, units, dialect)."""
    fmt = spec.csv
    path.parent.mkdir(parents=True, exist_ok=True)
    to_spec_frame(frame, spec).to_csv(
        path,
        index=False,
        sep=fmt.delimiter,
        decimal=fmt.decimal,
        encoding=fmt.encoding,
        float_format="%.6g",
    )
    return path
