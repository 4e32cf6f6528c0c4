"""95 % intervals calibrated over held-out *batches*, shared by every candidate.

Why not a row-level Gaussian interval: rows of one batch share their error (a batch that runs
richer than the model thinks is off at every row), and the error grows with batch time as the
titer does. Here a candidate's out-of-fold residuals (each from a model that never saw that
batch) set

* a scale that depends on elapsed time: the kernel-smoothed RMS residual at that time, so
  intervals are narrow while nothing has been produced and widen as the titer (or, for the
  harvest forecast, the remaining uncertainty) grows — and narrow again for a late forecast;
* one factor, chosen so that the *median held-out batch* has `level` − 1.5 points of its
  points inside (split-conformal over batches: per batch, that quantile of |residual| /
  scale; the factor is their median, Harrell–Davis). Pooled coverage then says how the worst
  batches fare. Why 1.5 points under the level: a batch's error is mostly one offset, so its
  coverage jumps from few points to all of them over a narrow range of widths, and a factor
  fitted on a dozen batches lands on either side; aimed at 95 % the median batch sat on the
  upper edge of the [0.90, 0.97] a batch-calibrated 95 % interval is asked to give, aimed
  at 93.5 % it sits in the middle.

An optional relative spread (e.g. a GP's predictive std over its typical value) widens the
interval where a model extrapolates, never narrows it. Lower bounds respect non-negativity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats.mstats import hdquantiles

from bioprocessml.dataset import TIME
from models.base import FloatArray, Prediction

LEVEL = 0.95
BANDWIDTH_SHARE = 0.05  # kernel bandwidth, as a share of the elapsed-time range
FLOOR_SHARE = 0.02  # scale floor, as a share of the largest smoothed scale
GRID_POINTS = 100
MEDIAN_BATCH_MARGIN = 0.015  # the median batch is aimed this far under the level (docstring)


def smooth_rms(
    positions: FloatArray, residuals: FloatArray, grid: FloatArray, bandwidth: float
) -> FloatArray:
    """Gaussian-kernel RMS of residuals against position, on the grid."""
    weights = np.exp(-0.5 * ((grid[:, None] - positions[None, :]) / bandwidth) ** 2) + 1e-300
    return np.sqrt((weights @ residuals**2) / weights.sum(axis=1))


def time_grid(elapsed: FloatArray) -> tuple[FloatArray, float]:
    """The grid (hours) a scale by elapsed time is kept on, and the kernel bandwidth."""
    low, high = float(elapsed.min()), float(elapsed.max())
    grid = np.linspace(low, high, GRID_POINTS) if high > low else np.array([low])
    return grid, max(BANDWIDTH_SHARE * (high - low), 1e-6)


def batch_factor(
    z: FloatArray, groups: npt.NDArray[np.str_], level: float = LEVEL, pooled: float | None = None
) -> float:
    """Smallest factor at which the median batch covers `level` of its points: the median over
    batches of each batch's `level` quantile of |z|. With ~20 points a batch, the plain
    (linear) sample quantile sits near the second largest |z| and is biased low; the
    median-unbiased estimator (Hyndman–Fan 8) is not. The median over a dozen batches is the
    noisiest part: the Harrell–Davis estimator (a smooth weighting of all order statistics)
    has a smaller variance than the middle order statistic. Groups of one row each
    (independent rows) reduce to the pooled quantile at `pooled` (default `level`): split-
    conformal over rows, where every row is its own batch and nothing jumps."""
    if len(np.unique(groups)) == len(groups):
        return float(np.quantile(np.abs(z), level if pooled is None else pooled))
    per_batch = [
        np.quantile(np.abs(z[groups == g]), level, method="median_unbiased")
        for g in np.unique(groups)
    ]
    return float(hdquantiles(np.asarray(per_batch), prob=[0.5])[0])


@dataclass
class IntervalCalibration:
    """Scale by elapsed time (on `grid`, hours) times one batch-conformal `factor`."""

    grid: FloatArray
    scale: FloatArray
    factor: float
    level: float = LEVEL

    @classmethod
    def fit(
        cls,
        residuals: FloatArray,
        elapsed: FloatArray,
        groups: npt.NDArray[np.str_],
        spread: FloatArray | None = None,
        level: float = LEVEL,
        relative: FloatArray | None = None,
    ) -> IntervalCalibration:
        """From out-of-fold residuals at `elapsed` hours of batches `groups`: see the module
        docstring. `spread` (widening only) and `relative` (any factor > 0, e.g. growth with
        the age of the newest assay) multiply the scale as they will at prediction time."""
        ok = np.isfinite(residuals)
        residuals, elapsed, groups = residuals[ok], elapsed[ok], np.asarray(groups)[ok]
        spread = None if spread is None else spread[ok]
        relative = np.ones(len(residuals)) if relative is None else relative[ok]
        if len(np.unique(groups)) < 2:
            raise ValueError("calibration needs out-of-fold residuals of at least two batches")
        grid, bandwidth = time_grid(elapsed)
        scale = smooth_rms(elapsed, residuals / relative, grid, bandwidth)
        scale = np.maximum(scale, FLOOR_SHARE * scale.max() + 1e-12)
        calibration = cls(grid, scale, 1.0, level)
        width = calibration.std(elapsed, spread) * relative
        aim = level - MEDIAN_BATCH_MARGIN
        calibration.factor = batch_factor(residuals / width, groups, aim, pooled=level)
        return calibration

    def std(self, elapsed: FloatArray, spread: FloatArray | None = None) -> FloatArray:
        """Uncalibrated scale at these elapsed hours, widened by a relative spread above 1."""
        scale = np.interp(elapsed, self.grid, self.scale)
        return scale if spread is None else scale * np.maximum(spread, 1.0)

    def interval(
        self,
        mean: FloatArray,
        elapsed: FloatArray,
        spread: FloatArray | None = None,
        lower_bound: float | None = 0.0,
        relative: FloatArray | None = None,
    ) -> Prediction:
        """Prediction with the calibrated interval; mean and bounds clipped at `lower_bound`."""
        half = self.factor * self.std(elapsed, spread)
        if relative is not None:
            half = half * relative
        if lower_bound is not None:
            mean = np.maximum(mean, lower_bound)
        lower = mean - half if lower_bound is None else np.maximum(mean - half, lower_bound)
        return Prediction(mean, lower, mean + half)


def elapsed_hours(histories: list[pd.DataFrame]) -> FloatArray:
    """Hours from each history's first row to its last: the position intervals depend on."""
    return np.array([float(h[TIME].iloc[-1] - h[TIME].iloc[0]) for h in histories], dtype=float)
