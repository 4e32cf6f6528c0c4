"""An arrived file as the table GX judges: text cells, the batch id, derived time columns.

The bytes are judged first (`sniffing.py`); only a file that passes is parsed, and every cell is
kept as text beside its number, so a non-number is named rather than silently dropped.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from bioprocessml.dataset import resolve_batch_id, to_number
from bioprocessml.errors import BatchLoadError
from bioprocessml.ingest.sniffing import Finding, sniff_file
from bioprocessml.spec import DatasetSpec, VariableSpec
from bioprocessml.units import DATETIME, read_timestamps, to_canonical

# Derived columns of the frame GX sees, next to the user's own headers.
# Derived columns of the frame GX sees, next to the user's own headers.
ELAPSED = "[derived] elapsed hours"
STEP = "[derived] hours since previous online reading"
SAMPLE = "[derived] offline sample time (h)"


def read_table(path: Path, spec: DatasetSpec) -> tuple[pd.DataFrame | None, list[Finding]]:
    """The file as a frame of text (as `dataset.read_raw` reads it), or None with the reasons."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [Finding("file", f"cannot read {path.name}: {exc}")]
    sniffed = sniff_file(data, spec.csv)
    if sniffed.failed or sniffed.text is None:
        return None, sniffed.findings
    try:
        raw = pd.read_csv(io.StringIO(sniffed.text), sep=spec.csv.delimiter, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = f"not a readable CSV: {' '.join(str(exc).split())}"
        return None, [*sniffed.findings, Finding("csv", reason)]
    if raw.empty:
        return None, [*sniffed.findings, Finding("rows", "header only, no data rows")]
    return raw, sniffed.findings


def find_batch_id(raw: pd.DataFrame, path: Path, spec: DatasetSpec) -> str | Finding | None:
    """The batch id through the spec, or a finding listing what was found instead. None when
    the id column is absent: the required-columns check reports that."""
    column = spec.batch_id.column
    if column is not None and column not in raw.columns:
        return None
    try:
        return resolve_batch_id(raw, path, spec)
    except BatchLoadError as exc:
        if column is None:
            return Finding("batch_id", f"{path.name}: {exc}")
        ids = [str(i) for i in raw[column].dropna().str.strip().unique()]
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        listed = ", ".join(map(repr, ids[:5])) + more
        reason = f"several batch ids in one file: {listed}" if ids else "no batch id value"
        return Finding("batch_id", reason, column=column)


def text_column(column: str) -> str:
    return f"{column} [text]"


def elapsed_hours(values: pd.Series, spec: DatasetSpec) -> pd.Series:
    """Hours since the first reading, whatever the time unit (datetime included)."""
    if spec.time.unit == DATETIME:
        stamps = read_timestamps(values, spec.time.format)
        hours = (stamps - stamps.min()).dt.total_seconds() / 3600.0
    else:
        hours = pd.Series(to_canonical(to_number(values, spec.csv.decimal), spec.time.unit))
    return (hours - hours.min()).set_axis(values.index)


def has_value(frame: pd.DataFrame, variables: list[VariableSpec]) -> pd.Series:
    """Rows where any of these variables (online or offline) holds a number."""
    return frame[[v.column for v in variables if v.column in frame.columns]].notna().any(axis=1)


def gx_frame(raw: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """What GX judges: each spec variable as numbers in the file's unit under the user's header,
    its raw text beside it (to spot non-numbers), and derived time columns."""
    frame = raw[[c for c in raw.columns if c in spec.file_columns]].copy()
    for var in spec.variables:
        if var.column in raw.columns:
            frame[var.column] = to_number(raw[var.column].astype(object), spec.csv.decimal)
            frame[text_column(var.column)] = raw[var.column]
    time = spec.time.column
    if time not in raw.columns:
        return frame
    frame[text_column(time)] = raw[time]
    if spec.time.unit != DATETIME:
        frame[time] = to_number(raw[time].astype(object), spec.csv.decimal)
    frame[ELAPSED] = elapsed_hours(raw[time].astype(object), spec)
    online = frame.loc[has_value(frame, spec.online), ELAPSED]
    frame[STEP] = online.dropna().sort_values().diff()  # in time order: disorder is not a gap
    frame[SAMPLE] = frame[ELAPSED].where(has_value(frame, spec.offline))
    return frame
