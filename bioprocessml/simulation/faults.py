"""Broken batch files of many kinds, for exercising the validation gate.

Each fault takes a good canonical frame and returns the bytes of a file that a careful pipeline
must quarantine. The kind is part of the file name (`C003-time-out-of-order.csv`) so that a
corpus explains itself.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME, to_spec_frame
from bioprocessml.spec import DatasetSpec

Fault = Callable[[pd.DataFrame, DatasetSpec], bytes]


def _csv(frame: pd.DataFrame, spec: DatasetSpec, **kwargs: str) -> bytes:
    options = {"sep": spec.csv.delimiter, "decimal": spec.csv.decimal} | kwargs
    buffer = io.StringIO()
    to_spec_frame(frame, spec).to_csv(buffer, index=False, float_format="%.6g", **options)
    return buffer.getvalue().encode(kwargs.get("encoding", "utf-8"))


def missing_target(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    column = spec.variable(spec.target).column
    text = to_spec_frame(frame, spec).drop(columns=[column])
    return text.to_csv(index=False, float_format="%.6g").encode()


def target_in_mg_per_l(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    """Unit mix-up: the assay export wrote mg/L into a g/L column."""
    frame = frame.copy()
    frame[spec.target] *= 1000.0
    return _csv(frame, spec)


def time_out_of_order(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    n = len(frame)
    order = np.r_[0 : n // 3, 2 * n // 3 : n, n // 3 : 2 * n // 3]
    return _csv(frame.iloc[order], spec)


def duplicate_timestamps(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    rows = frame.iloc[100:130]
    return _csv(pd.concat([frame.iloc[:130], rows, frame.iloc[130:]]), spec)


def nan_burst(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    """A probe offline for a third of the batch."""
    frame = frame.copy()
    n = len(frame)
    frame.loc[n // 3 : 2 * n // 3, spec.online[2].name] = np.nan
    return _csv(frame, spec)


def negative_concentration(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    frame = frame.copy()
    name = spec.names_with(dimension="concentration")[0]
    rows = frame.index[frame[name].notna()][1:4]
    frame.loc[rows, name] = -frame.loc[rows, name].abs() - 1.0
    return _csv(frame, spec)


def impossible_temperature(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    frame = frame.copy()
    name = spec.names_with(dimension="temperature")[0]
    frame.loc[200:220, name] = 250.0
    return _csv(frame, spec)


def volume_out_of_bounds(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    frame = frame.copy()
    name = spec.names_with(dimension="volume")[0]
    frame[name] = frame[name] * 10.0
    return _csv(frame, spec)


def empty_file(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    return b""


def header_only(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    return _csv(frame.iloc[:0], spec)


def binary_file(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    rng = np.random.default_rng(len(frame))
    return b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()


def semicolon_decimal_comma(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    """A European spreadsheet export of the same data."""
    return _csv(frame, spec, sep=";", decimal=",")


def truncated(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    """A copy cut off mid-line, as when a transfer dies."""
    data = _csv(frame, spec)
    return data[: int(len(data) * 0.37)]


def non_utf8_encoding(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    return _csv(frame, spec, encoding="utf-16")


def too_few_rows(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    return _csv(frame.iloc[:6], spec)


def text_in_numeric_column(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    table = to_spec_frame(frame, spec).astype(object)
    table.iloc[50:60, table.columns.get_loc(spec.online[1].column)] = "ERR"
    return table.to_csv(index=False, float_format="%.6g").encode()


def offline_after_end(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    """An assay row stamped long after the last online reading."""
    extra = frame.iloc[[-1]].copy()
    extra[TIME] = frame[TIME].max() + 200.0
    for var in spec.online:
        extra[var.name] = np.nan
    return _csv(pd.concat([frame, extra]), spec)


def mixed_batch_ids(frame: pd.DataFrame, spec: DatasetSpec) -> bytes:
    frame = frame.copy()
    frame.loc[len(frame) // 2 :, BATCH_ID] = str(frame[BATCH_ID].iloc[0]) + "-X"
    return _csv(frame, spec)


FAULTS: dict[str, Fault] = {
    "missing-target": missing_target,
    "target-mg-per-l": target_in_mg_per_l,
    "time-out-of-order": time_out_of_order,
    "duplicate-timestamps": duplicate_timestamps,
    "nan-burst": nan_burst,
    "negative-concentration": negative_concentration,
    "impossible-temperature": impossible_temperature,
    "volume-out-of-bounds": volume_out_of_bounds,
    "empty-file": empty_file,
    "header-only": header_only,
    "binary-file": binary_file,
    "semicolon-decimal-comma": semicolon_decimal_comma,
    "truncated": truncated,
    "non-utf8-encoding": non_utf8_encoding,
    "too-few-rows": too_few_rows,
    "text-in-numeric-column": text_in_numeric_column,
    "offline-after-end": offline_after_end,
    "mixed-batch-ids": mixed_batch_ids,
}


def corrupt_file(frame: pd.DataFrame, spec: DatasetSpec, kind: str) -> bytes:
    try:
        fault = FAULTS[kind]
    except KeyError:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}") from None
    return fault(frame, spec)
