"""The LSTM's view of a batch: its history resampled on a fixed grid from the batch start and
each channel scaled as its deviation from the training batches' mean trajectory at that step
(the "golden batch", as batch-wise unfolding does in MPCA/MPLS), padded into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bioprocessml.dataset import TIME
from models.base import FloatArray, Task
from models.features import FeatureSpec

CLIP = 8.0  # z-scores beyond this are faults, not information


def _bin_index(elapsed_h: FloatArray, step_h: float) -> np.ndarray:
    """Grid step of each time: step k holds ((k-1)·step_h, k·step_h], step 0 the start alone,
    so a history cut on the grid is exactly a prefix of the whole batch's sequence."""
    return np.ceil(elapsed_h / step_h - 1e-9).astype(int)


def _bin_means(time: FloatArray, values: FloatArray, step_h: float, n: int) -> FloatArray:
    """Mean of each column within each grid step (elapsed hours); NaN where a step has none."""
    index = np.minimum(_bin_index(time, step_h), n - 1)
    ok = ~np.isnan(values)
    out = np.full((n, values.shape[1]), np.nan)
    for j in range(values.shape[1]):
        counts = np.bincount(index[ok[:, j]], minlength=n)
        sums = np.bincount(index[ok[:, j]], weights=values[ok[:, j], j], minlength=n)
        out[counts > 0, j] = sums[counts > 0] / counts[counts > 0]
    return out


def _ffill(values: FloatArray) -> FloatArray:
    """Forward-fill NaN down the rows; what is still NaN (nothing seen yet) becomes 0."""
    frame = pd.DataFrame(values).ffill()
    return np.nan_to_num(frame.to_numpy(dtype=float))


def _smooth(x: FloatArray, y: FloatArray, grid: FloatArray, bandwidth: float) -> FloatArray:
    """Gaussian-kernel (Nadaraya–Watson) mean of y against x, evaluated on the grid."""
    ok = ~np.isnan(y)
    if not ok.any():
        return np.zeros_like(grid)
    weights = np.exp(-0.5 * ((grid[:, None] - x[None, ok]) / bandwidth) ** 2) + 1e-300
    return np.asarray((weights @ y[ok]) / weights.sum(axis=1), dtype=float)


def _mean_curve(x: FloatArray, y: FloatArray, grid: FloatArray, bandwidth: float) -> FloatArray:
    """The kernel mean of y against x (`_smooth`) within a grid step of the range of x,
    continued beyond by a local-linear fit at the edge: the kernel mean alone flattens there
    (it put the titer of the first assay, ~12 h, at every earlier hour, where the batch has
    made almost none). Within a step the kernel mean is kept: a sample there is interpolated
    from that grid point, and changing it retrains the network on another target."""
    ok = ~np.isnan(y)
    if not ok.any():
        return np.zeros_like(grid)
    x, y = x[ok], y[ok]
    curve = _smooth(x, y, grid, bandwidth)
    step = float(grid[1] - grid[0]) if len(grid) > 1 else 0.0
    for edge, outside in ((x.min(), grid < x.min() - step), (x.max(), grid > x.max() + step)):
        if outside.any():
            level, slope = _local_line(x, y, edge, bandwidth)
            curve[outside] = level + slope * (grid[outside] - edge)
    return curve


def _local_line(x: FloatArray, y: FloatArray, at: float, bandwidth: float) -> tuple[float, float]:
    """Level and slope at `at` of a Gaussian-kernel weighted least-squares line (the kernel
    mean and no slope if all weight is on one x)."""
    w = np.exp(-0.5 * ((x - at) / bandwidth) ** 2)
    w = w / w.max()
    d = x - at
    s0, s1, s2 = w.sum(), (w * d).sum(), (w * d**2).sum()
    t0, t1 = (w * y).sum(), (w * d * y).sum()
    det = s0 * s2 - s1**2
    if det <= 1e-9 * s0 * s2 or s2 == 0:
        return float(t0 / s0), 0.0
    return float((s2 * t0 - s1 * t1) / det), float((s0 * t1 - s1 * t0) / det)


def _moments(values: FloatArray, axis: int | tuple[int, ...]) -> tuple[FloatArray, FloatArray]:
    """Mean and standard deviation ignoring NaN; 0 where nothing was seen (no warnings)."""
    ok = ~np.isnan(values)
    count = np.maximum(ok.sum(axis), 1)
    mean = np.where(ok, values, 0.0).sum(axis) / count
    deviation = np.where(ok, values - np.expand_dims(mean, axis), 0.0)
    return mean, np.sqrt((deviation**2).sum(axis) / count)


def _floor_sd(sd: FloatArray, values: FloatArray) -> FloatArray:
    """A noise floor for per-step spreads; a channel that never varies gets a unit scale."""
    floored = np.maximum(sd, 0.1 * _moments(values, 0)[1])
    return np.where(floored > 0, floored, 1.0)


@dataclass
class _Raw:
    """A history on the grid, before scaling: online means + cumulative feed, and assays."""

    elapsed_h: float
    online: FloatArray  # (steps, channels)
    assay_time: FloatArray  # elapsed hours of each assay row
    assays: FloatArray  # (assays, offline)


def _raw(history: pd.DataFrame, fs: FeatureSpec, task: Task, step_h: float) -> _Raw:
    time = history[TIME].to_numpy(dtype=float)
    time = time - time[0]
    n = int(_bin_index(time[-1:], step_h)[0]) + 1
    values = history[list(fs.online)].to_numpy(dtype=float)
    rates = np.nan_to_num(history[list(fs.cumulative)].to_numpy(dtype=float))
    dt = np.diff(time, prepend=0.0)[:, None]
    cum = np.cumsum(0.5 * (rates + np.vstack([rates[:1], rates[:-1]])) * dt, axis=0)
    online = _bin_means(time, np.hstack([values, cum]), step_h, n)
    if task == "soft_sensor":  # the target's own assay would leak: no offline inputs at all
        return _Raw(float(time[-1]), online, np.zeros(0), np.zeros((0, 0)))
    assays = history[list(fs.offline)].to_numpy(dtype=float)
    seen = ~np.isnan(assays).all(axis=1)
    return _Raw(float(time[-1]), online, time[seen], assays[seen])


@dataclass
class _Scaling:
    """Training statistics, stored with the model; curves are indexed by grid step."""

    step_h: float
    time_scale: float
    online_mean: FloatArray  # (steps, channels): the golden batch
    online_sd: FloatArray
    offline_mean: FloatArray  # (steps, offline), no columns for the soft sensor
    offline_sd: FloatArray
    base: FloatArray  # target mean by elapsed time: the naive forecast
    y_scale: float

    @property
    def grid(self) -> FloatArray:
        return np.arange(len(self.base), dtype=float) * self.step_h

    def curve(self, values: FloatArray, elapsed_h: FloatArray) -> FloatArray:
        return np.asarray(np.interp(elapsed_h, self.grid, values), dtype=float)

    def rows(self, table: FloatArray, n: int) -> FloatArray:
        return table[np.minimum(np.arange(n), len(table) - 1)]


def _fit_scaling(raws: list[_Raw], step_h: float) -> _Scaling:
    """Golden-batch curves from whole training batches (one history each)."""
    steps = max(len(r.online) for r in raws)
    stack = np.full((len(raws), steps, raws[0].online.shape[1]), np.nan)
    for i, r in enumerate(raws):
        stack[i, : len(r.online)] = r.online
    flat = stack.reshape(-1, stack.shape[2])
    mean, sd = _moments(stack, 0)
    mean = np.where((~np.isnan(stack)).any(0), mean, _moments(flat, 0)[0])
    grid = np.arange(steps, dtype=float) * step_h
    bandwidth = max(step_h, 0.05 * steps * step_h)
    t = np.concatenate([r.assay_time for r in raws])
    v = np.vstack([r.assays for r in raws])
    off_mean, off_sd = np.zeros((steps, v.shape[1])), np.zeros((steps, v.shape[1]))
    for j in range(v.shape[1]):
        off_mean[:, j] = _smooth(t, v[:, j], grid, bandwidth)
        dev2 = (v[:, j] - np.interp(t, grid, off_mean[:, j])) ** 2
        off_sd[:, j] = np.sqrt(_smooth(t, dev2, grid, bandwidth))
    return _Scaling(
        step_h, steps * step_h, mean, _floor_sd(sd, flat),
        off_mean, _floor_sd(off_sd, v), np.zeros(steps), 1.0,
    )  # fmt: skip


def _encode(raw: _Raw, sc: _Scaling) -> FloatArray:
    """Scaled input sequence: online deviations, elapsed time and, for the harvest forecast,
    forward-filled assay deviations, an "assay in this step" mask and the newest assay's age.
    Every step but the last depends only on data up to that step's end (see `_Net`)."""
    n = len(raw.online)
    online = (raw.online - sc.rows(sc.online_mean, n)) / sc.rows(sc.online_sd, n)
    ends = np.minimum(np.arange(n) * sc.step_h, raw.elapsed_h)
    parts = [_ffill(online), (ends / sc.time_scale)[:, None]]
    if sc.offline_mean.shape[1]:
        index = _bin_index(raw.assay_time, sc.step_h)
        ref = np.column_stack([sc.curve(c, raw.assay_time) for c in sc.offline_mean.T])
        sd = np.column_stack([sc.curve(c, raw.assay_time) for c in sc.offline_sd.T])
        deviation = np.full((n, ref.shape[1]), np.nan)
        deviation[index] = (raw.assays - ref) / sd
        seen = np.full(n, np.nan)
        seen[index] = raw.assay_time
        age = (ends - pd.Series(seen).ffill().fillna(0.0).to_numpy()) / sc.time_scale
        parts += [_ffill(deviation), (~np.isnan(seen))[:, None].astype(float), age[:, None]]
    return np.clip(np.hstack(parts), -CLIP, CLIP)


@dataclass
class _Batch:
    """Encoded samples as tensors, built once per fit or predict call.

    The LSTM runs over `base` sequences; sample i reads the state of base `source[i]` after its
    first `lengths[i] - 1` steps, and its own last step. The cuts of one batch share their
    batch's whole sequence, so training runs the LSTM once per batch, not once per cut."""

    base: torch.Tensor  # (sequences, steps, channels), zero-padded
    source: torch.Tensor
    lengths: torch.Tensor
    last: torch.Tensor  # (samples, channels): each sample's own last step
    elapsed: FloatArray

    def take(self, index: np.ndarray) -> _Batch:
        i = torch.as_tensor(index, dtype=torch.long)
        used, source = torch.unique(self.source[i], return_inverse=True)
        steps = int(self.lengths[i].max())
        return _Batch(
            self.base[used, :steps], source, self.lengths[i], self.last[i], self.elapsed[index]
        )

    def noisy(self, std: torch.Tensor) -> _Batch:
        """The same samples with Gaussian noise of `std` (per channel) on every step."""
        base = self.base + std * torch.randn_like(self.base)
        last = self.last + std * torch.randn_like(self.last)
        return _Batch(base, self.source, self.lengths, last, self.elapsed)


def _tensors(sequences: list[FloatArray], source: np.ndarray, elapsed: FloatArray) -> _Batch:
    used, source = np.unique(source, return_inverse=True)
    base = np.zeros((len(used), max(len(sequences[i]) for i in used), sequences[0].shape[1]))
    for k, i in enumerate(used):
        base[k, : len(sequences[i])] = sequences[i]
    return _Batch(
        torch.tensor(base, dtype=torch.float32),
        torch.tensor(source, dtype=torch.long),
        torch.tensor([len(s) for s in sequences], dtype=torch.long),
        torch.tensor(np.vstack([s[-1] for s in sequences]), dtype=torch.float32),
        elapsed,
    )


def _longest(groups: np.ndarray, sizes: list[int]) -> dict[str, int]:
    """The sample holding each batch's longest history."""
    longest: dict[str, int] = {}
    for i, g in enumerate(groups):
        if g not in longest or sizes[i] > sizes[longest[g]]:
            longest[g] = i
    return longest


def _shared_source(sequences: list[FloatArray], groups: np.ndarray) -> np.ndarray:
    """For each sample, the longest sequence of its batch if its completed steps are a prefix
    of that one (they are for cuts of one batch), else its own."""
    source = np.arange(len(sequences))
    longest = _longest(groups, [len(s) for s in sequences])
    for i, g in enumerate(groups):
        j, n = longest[g], len(sequences[i]) - 1
        if len(sequences[j]) > n and np.array_equal(sequences[i][:n], sequences[j][:n]):
            source[i] = j
    return source
