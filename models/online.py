"""Tabular features of a growing batch history, updated as its rows arrive: what
`models.features.tabular_features` computes from the whole history, equal to it to the bit.

The service follows a running batch row by row. Recomputing the features from the whole history
cost ~2 ms of pandas work per update (30 columns) and grows with the history; here a new row
costs O(1) Python and numpy work per column. What stays O(n) on purpose, to stay bit-equal: an
integral is the sum (numpy's pairwise sum, as `np.trapezoid` does it) of its stored
per-interval terms, a loop in C over one float per row (~1 µs at 1150 rows).

Candidates that can answer from features alone (PLS, GP and `+assays` over them) take a
`FeatureView` in `predict_online`; the others (LSTM, hybrid) need the rows themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models.base import FloatArray, Task
from models.features import RECENT_H, FeatureSpec

START_VALUES = 12  # an integrated channel's start level: the mean of its first 12 readings


class Growing:
    """Rows of floats (`width` columns, stored column by column) that grow by appending,
    amortised O(1) per value; `drop_before` forgets old rows (a sliding window)."""

    def __init__(self, width: int, capacity: int = 64) -> None:
        self._data = np.empty((width, capacity))
        self._start = self._stop = 0

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def values(self) -> FloatArray:
        """(width, rows) view of the rows held; valid until the next append."""
        return self._data[:, self._start : self._stop]

    def extend(self, block: FloatArray) -> None:
        """Append (width, k) values."""
        k = block.shape[1]
        if self._stop + k > self._data.shape[1]:
            held = self.values
            capacity = max(64, 2 * (len(self) + k))
            data = np.empty((self._data.shape[0], capacity))
            data[:, : len(self)] = held
            self._data, self._start, self._stop = data, 0, len(self)
        self._data[:, self._stop : self._stop + k] = block
        self._stop += k

    def drop_before(self, index: int) -> None:
        self._start += index


class _Integral:
    """`_integral(time, values)` of a feed, or `abs(_integral(time, values - start))` of an
    off-gas channel (`offset`), as in `tabular_features`: trapezoid terms over the channel's
    readings (missing values skipped), kept as they arrive."""

    def __init__(self, offset: bool) -> None:
        self.offset = offset
        self.terms = Growing(1)
        self.early: tuple[list[float], list[float]] = ([], [])  # readings before `start` is set
        self.last: tuple[float, float] | None = None
        self.start: float | None = None if offset else 0.0
        self.count = 0

    def extend(self, time: FloatArray, values: FloatArray) -> None:
        ok = ~np.isnan(values)
        t, v = time[ok], values[ok]
        if not len(t):
            return
        self.count += len(t)
        if self.start is None:  # the start level needs the first START_VALUES readings
            self.early[0].extend(t.tolist())
            self.early[1].extend(v.tolist())
            if self.count < START_VALUES:
                return
            t, v = (np.asarray(x, dtype=float) for x in self.early)
            self.start = np.asarray(self.early[1][:START_VALUES]).mean()
        elif self.last is not None:
            t, v = np.concatenate([[self.last[0]], t]), np.concatenate([[self.last[1]], v])
        self.terms.extend(self._terms(t, v)[None, :])
        self.last = (float(t[-1]), float(v[-1]))

    def _terms(self, t: FloatArray, v: FloatArray) -> FloatArray:
        y = v - (self.start or 0.0) if self.offset else v
        return np.asarray(np.diff(t) * (y[1:] + y[:-1]) / 2.0, dtype=float)

    def value(self) -> float:
        if self.count < 2:
            return 0.0
        if self.start is None:  # fewer readings than START_VALUES: start = their mean
            t, v = (np.asarray(x, dtype=float) for x in self.early)
            y = v - v.mean()
            return abs(float((np.diff(t) * (y[1:] + y[:-1]) / 2.0).sum()))
        total = float(self.terms.values[0].sum())
        return abs(total) if self.offset else total


@dataclass(frozen=True)
class FeatureView:
    """What a candidate sees of a history without its rows: raw tabular features per task
    (missing values not filled yet), the history's elapsed hours and last time, and the
    view as it was at the newest assay of the target (with the assay's value)."""

    features: Mapping[Task, FloatArray]
    elapsed: float
    time: float
    target: float
    at_assay: FeatureView | None


class TabularState:
    """The features of one growing history for one `FeatureSpec` (see the module docstring).
    `extend` takes canonical columns of new rows, their times not before the last row's."""

    def __init__(self, fs: FeatureSpec) -> None:
        self.fs = fs
        self.window = Growing(1 + len(fs.online))  # time and online channels, last RECENT_H
        self.integrals = [_Integral(False) for _ in fs.cumulative]
        self.integrals += [_Integral(True) for _ in fs.integrated]
        self.offline: list[tuple[float, float] | None] = [None] * len(fs.offline)
        self.sampled: float | None = None  # time of the newest row with any offline assay
        self.first = self.now = float("nan")
        self.target = float("nan")
        self.assay: FeatureView | None = None
        self.rows = 0

    def extend(self, time: FloatArray, columns: Mapping[str, FloatArray]) -> None:
        """Append rows; a row with an assay of the target keeps a view of the history then."""
        assays = np.flatnonzero(~np.isnan(columns[self.fs.target]))
        if len(assays):
            cut = int(assays[-1]) + 1
            self._append(time[:cut], {k: v[:cut] for k, v in columns.items()})
            self.assay = self.view()
            time, columns = time[cut:], {k: v[cut:] for k, v in columns.items()}
        if len(time):
            self._append(time, columns)

    def _append(self, time: FloatArray, columns: Mapping[str, FloatArray]) -> None:
        fs = self.fs
        if self.rows == 0:
            self.first = float(time[0])
        self.now, self.rows = float(time[-1]), self.rows + len(time)
        self.target = float(columns[fs.target][-1])
        self.window.extend(np.vstack([time, *(columns[n] for n in fs.online)]))
        held = self.window.values[0]
        self.window.drop_before(int(np.searchsorted(held, self.now - RECENT_H, side="left")))
        for integral, name in zip(self.integrals, fs.cumulative + fs.integrated, strict=True):
            integral.extend(time, columns[name])
        for i, name in enumerate(fs.offline):
            seen = np.flatnonzero(~np.isnan(columns[name]))
            if len(seen):
                self.offline[i] = (float(columns[name][seen[-1]]), float(time[seen[-1]]))
        if fs.offline:
            assayed = (~np.isnan(np.vstack([columns[n] for n in fs.offline]))).any(axis=0)
            if assayed.any():
                self.sampled = float(time[np.flatnonzero(assayed)[-1]])

    def view(self) -> FeatureView:
        """The features now (both tasks): O(columns) work, plus the integrals' sums."""
        if self.rows == 0:
            raise ValueError("no rows yet")
        elapsed = self.now - self.first
        window = self.window.values[1:]
        missing = np.isnan(window)
        count = (~missing).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(missing, 0.0, window).sum(axis=1) / count.astype(float)
        soft = [elapsed, *np.where(count > 0, means, np.nan).tolist()]
        soft += [integral.value() for integral in self.integrals]
        harvest = soft + self._offline_features(elapsed)
        return FeatureView(
            {"soft_sensor": np.asarray(soft, dtype=float),
             "harvest": np.asarray(harvest, dtype=float)},
            elapsed, self.now, self.target, self.assay,
        )  # fmt: skip

    def _offline_features(self, elapsed: float) -> list[float]:
        """As `models.features.offline_features`: last assay, its mean rate, newest age."""
        last, rate = [], []
        for seen in self.offline:
            value, since = (seen[0], seen[1] - self.first) if seen else (0.0, 0.0)
            last.append(value)
            rate.append(value / since if since > 0 else 0.0)
        age = self.now - self.sampled if self.sampled is not None else elapsed
        return [*last, *rate, float(age)]


def answers_online(candidate: object) -> bool:
    """Whether a candidate predicts from a `FeatureView` (PLS, GP, `+assays` over them)."""
    base = getattr(candidate, "base", None)
    return hasattr(candidate, "predict_online") and (base is None or answers_online(base))
