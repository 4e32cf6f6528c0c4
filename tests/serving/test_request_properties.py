"""Property tests of the request checks (`serving/rows.py`): any rows give checked canonical
columns or an InputError that says why, never another exception; they agree, message for
message, with the per-cell checks they replaced; and rows checked in pieces are the rows
checked at once, which the incremental API relies on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioprocessml.dataset import TIME, canonical_frame
from bioprocessml.errors import BatchLoadError
from bioprocessml.serving.batch_state import BatchHistory
from bioprocessml.serving.rows import CheckedRows, InputError, check_rows
from bioprocessml.spec import DatasetSpec

pytestmark = pytest.mark.unit
PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
TEXT = st.text(alphabet="0123456789.-e ,ab", max_size=6)
NUMBER = st.one_of(
    st.floats(-1e4, 1e4, allow_nan=False), st.integers(-(10**6), 10**6), st.just(None), TEXT
)


def cells(spec: DatasetSpec, draw: Any, weird: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in spec.file_columns:
        if draw(st.integers(0, 9)) == 0 and weird:
            continue  # sometimes a column is left out
        row[column] = draw(NUMBER if weird else st.floats(0, 0.5))
    if weird and draw(st.booleans()):
        row[draw(st.sampled_from(["temp", "pH ", "titer"]))] = 1.0
    return row


@st.composite
def any_rows(draw: Any, spec: DatasetSpec) -> list[dict[str, Any]]:
    rows = [cells(spec, draw, weird=True) for _ in range(draw(st.integers(0, 6)))]
    if rows and draw(st.booleans()):  # plausible times and id, so later checks are reached
        for i, row in enumerate(rows):
            row[spec.time.column] = float(i)
            row["batch_id"] = "B1"
    return rows


def reference(batch_id: str, rows: list[dict[str, Any]], spec: DatasetSpec) -> pd.DataFrame:
    """The per-cell checks `check_rows` replaced (offline columns made optional, as now)."""
    known = spec.file_columns
    unknown = sorted({k for row in rows for k in row} - set(known))
    if not 1 <= len(rows) <= 100:
        raise InputError(f"rows: send 1 to 100 rows of the batch so far, got {len(rows)}")
    if unknown:
        raise InputError(f"unknown columns {unknown}; the dataset spec {spec.name!r} has {known}")
    raw = pd.DataFrame(rows, columns=[c for c in known if any(c in row for row in rows)])
    raw = raw.map(lambda v: None if v is None or v != v else str(v)).astype(object)
    if "batch_id" in raw and set(raw["batch_id"].dropna()) - {batch_id}:
        raise InputError(f"column 'batch_id' must equal batch_id {batch_id!r} in every row")
    for v in [*spec.offline, *spec.unmeasured]:
        if v.column not in raw:
            raw[v.column] = None
    try:
        frame = canonical_frame(raw, spec, batch_id)
    except BatchLoadError as exc:
        raise InputError(str(exc)) from None
    checks = [(spec.time.column, TIME, None)]
    checks += [(v.column, v.name, v.canonical_range) for v in spec.variables]
    for column, name, bounds in checks:
        given, values = raw[column].notna(), frame[name]
        bad = given & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{column}: row {row}: {raw[column].iloc[row]!r} is not a number")
        if bounds is not None:
            outside = (values < bounds[0]) | (values > bounds[1])
            if outside.any():
                row = int(np.flatnonzero(outside)[0])
                raise InputError(f"{column}: {int(outside.sum())} value(s) outside the plausible "
                                 f"range of the dataset spec, e.g. row {row}: {raw[column].iloc[row]}")  # fmt: skip
    if frame[TIME].isna().any():
        raise InputError(f"{spec.time.column}: every row needs a time")
    if (frame[TIME].diff().dropna() < 0).any():
        row = int(np.flatnonzero(frame[TIME].diff() < 0)[0])
        raise InputError(f"{spec.time.column}: time goes backwards at row {row}")
    return frame


def outcome(call: Any) -> Any:
    try:
        return call()
    except InputError as exc:
        assert str(exc), "an InputError says why"
        return str(exc)


@PROPERTY
@given(data=st.data())
def test_any_rows_are_checked_or_refused_with_a_reason(spec: DatasetSpec, data: Any) -> None:
    rows = data.draw(any_rows(spec))
    result = outcome(lambda: check_rows("B1", rows, spec, 100))
    assert isinstance(result, str | CheckedRows)
    if isinstance(result, CheckedRows):
        assert len(result) == len(rows) and np.isfinite(result.time).all()


@PROPERTY
@given(data=st.data())
def test_column_checks_agree_with_the_per_cell_checks(spec: DatasetSpec, data: Any) -> None:
    """Integers as floats: pandas made an integer column with a missing value float, so the
    old messages quoted 0 as 0.0; the new ones quote what was sent."""
    rows = [{k: float(v) if type(v) is int else v for k, v in row.items()}
            for row in data.draw(any_rows(spec))]  # fmt: skip
    new = outcome(lambda: check_rows("B1", rows, spec, 100).frame())
    old = outcome(lambda: reference("B1", rows, spec))
    if isinstance(old, str) or isinstance(new, str):
        assert new == old
    else:  # the old checks parsed numbers from text: equal up to the last bit
        pd.testing.assert_frame_equal(new, old, check_exact=False, rtol=1e-12, check_dtype=False)


@PROPERTY
@given(data=st.data())
def test_rows_checked_in_pieces_are_the_rows_checked_at_once(spec: DatasetSpec, data: Any) -> None:
    n = data.draw(st.integers(1, 12))
    rows = [{**cells(spec, data.draw, weird=False), spec.time.column: 0.5 * i, "batch_id": "B1"}
            for i in range(n)]  # fmt: skip
    for row in rows:
        row.update({"temperature_C": 30.0, "pH": 7.0, "agitation_rpm": 500.0, "volume_L": 5.0,
                    "offgas_O2_pct": 20.0})  # fmt: skip
    cuts = sorted(set(data.draw(st.lists(st.integers(1, n - 1), max_size=4)) if n > 1 else []))
    history = BatchHistory("B1", spec)
    for start, end in zip([0, *cuts], [*cuts, n], strict=True):
        history.extend(check_rows("B1", rows[start:end], spec, 100))
    pd.testing.assert_frame_equal(history.frame(), check_rows("B1", rows, spec, 100).frame())
