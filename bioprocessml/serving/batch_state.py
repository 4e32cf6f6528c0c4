"""One running batch as the service follows it: its canonical rows so far, appended in
amortised O(new rows), and per feature spec the growing feature state the models answer from.

The rows are kept whole, so a model without an online feature state (LSTM, hybrid) still gets
the exact history (`frame()`, an O(n) copy), and a model that arrives later (a new champion)
builds its feature state from them once.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.serving.rows import CheckedRows
from bioprocessml.spec import DatasetSpec
from models.features import FeatureSpec
from models.online import FeatureView, Growing, TabularState


class BatchHistory:
    """A batch's rows so far; callers hold `lock` while they extend or read it."""

    def __init__(self, batch_id: str, spec: DatasetSpec) -> None:
        self.batch_id = batch_id
        self.names = [v.name for v in spec.variables]
        self.metadata_names = [m.name for m in spec.metadata]
        self.numbers = Growing(1 + len(self.names))  # time, then every variable
        self.metadata: dict[str, list[str]] = {name: [] for name in self.metadata_names}
        self.origin: pd.Timestamp | None = None
        self.states: dict[FeatureSpec, TabularState] = {}
        self._views: dict[FeatureSpec, FeatureView] = {}  # for the rows held now
        self.lock = threading.Lock()
        self.touched = time.monotonic()
        self._frame: pd.DataFrame | None = None

    @property
    def rows(self) -> int:
        return len(self.numbers)

    @property
    def time_h(self) -> float:
        """Batch time of the last row (NaN before the first)."""
        return float(self.numbers.values[0, -1]) if self.rows else float("nan")

    def extend(self, rows: CheckedRows) -> None:
        """Append checked rows (the caller checked that they continue the batch)."""
        block = np.vstack([rows.time, *(rows.values[n] for n in self.names)])
        self.numbers.extend(block)
        for name in self.metadata_names:
            self.metadata[name].extend(rows.metadata.get(name, [""] * len(rows)))
        if self.origin is None:
            self.origin = rows.origin
        for fs, state in self.states.items():
            state.extend(rows.time, {n: rows.values[n] for n in _needed(fs)})
        self._frame = None
        self._views.clear()
        self.touched = time.monotonic()

    def view(self, fs: FeatureSpec) -> FeatureView:
        """Features now for a model's feature spec; its state is built from the rows so far the
        first time (O(n) once), then grows with them."""
        if fs in self._views:
            return self._views[fs]
        state = self.states.get(fs)
        if state is None:
            state = TabularState(fs)
            held = self.numbers.values
            index = {name: i + 1 for i, name in enumerate(self.names)}
            state.extend(held[0], {n: held[index[n]] for n in _needed(fs)})
            self.states[fs] = state
        self._views[fs] = state.view()
        return self._views[fs]

    def frame(self) -> pd.DataFrame:
        """The canonical frame so far (what `/predict` with the whole history would check into)."""
        if self._frame is None:
            held = self.numbers.values
            columns = {BATCH_ID: [self.batch_id] * self.rows, TIME: held[0].copy()}
            columns |= {name: held[i + 1].copy() for i, name in enumerate(self.names)}
            self._frame = pd.DataFrame({**columns, **self.metadata})
        return self._frame

    def checked(self) -> CheckedRows:
        """Every row as one block (to store or to rebuild from)."""
        held = self.numbers.values
        values = {name: held[i + 1].copy() for i, name in enumerate(self.names)}
        metadata = {k: list(v) for k, v in self.metadata.items()}
        return CheckedRows(self.batch_id, held[0].copy(), values, metadata, self.origin)


def _needed(fs: FeatureSpec) -> list[str]:
    return list(dict.fromkeys([*fs.online, *fs.cumulative, *fs.integrated, *fs.offline]))


class BatchSummary(BaseModel):
    """What the service holds of a running batch: a client continues from row `rows`."""

    batch_id: str
    rows: int = Field(description="rows held: the next request's `first_row`")
    time_h: float | None = Field(description="batch time of the last row held")
