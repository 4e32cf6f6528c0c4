"""The naive forecast every model must beat: what past batches say without looking at this one.

Soft sensor: the mean titer trajectory of the training batches at the same elapsed time.
Harvest forecast: the mean final titer of the training batches. Both come with a 95 % prediction
interval from the spread between batches (Student t, batches as the unit), so the naive forecast
is a complete candidate: the gate measures every model against it, and the monitor measures the
live champion against it on each new batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bioprocessml.dataset import TIME
from models.base import FloatArray, Prediction, Samples, Task

GRID_POINTS = 200


def elapsed_hours(samples: Samples) -> FloatArray:
    """Each sample's time since its batch started."""
    starts = np.array([float(h[TIME].iloc[0]) for h in samples.histories])
    return samples.times - starts


def batch_trajectories(samples: Samples, grid: FloatArray) -> FloatArray:
    """Each training batch's target interpolated on `grid` (elapsed hours): batches × grid,
    NaN outside the batch's sampled span."""
    elapsed, rows = elapsed_hours(samples), []
    for group in np.unique(samples.groups):
        mine = samples.groups == group
        order = np.argsort(elapsed[mine])
        t, y = elapsed[mine][order], samples.targets[mine][order]
        rows.append(np.interp(grid, t, y, left=np.nan, right=np.nan))
    return np.vstack(rows)


class NaiveModel:
    """Mean of the training batches (by elapsed time for the soft sensor), with a between-batch
    prediction interval; never looks at the history beyond its elapsed time."""

    name = "naive"

    def __init__(self, task: Task) -> None:
        self.task = task
        self.params_: dict[str, float] = {}

    def fit(self, samples: Samples) -> NaiveModel:
        batches = len(np.unique(samples.groups))
        if batches < 2:
            raise ValueError("the naive forecast needs at least two training batches")
        self.t_ = float(stats.t.ppf(0.975, batches - 1) * np.sqrt(1 + 1 / batches))
        if self.task == "harvest":
            finals = [samples.targets[samples.groups == g][0] for g in np.unique(samples.groups)]
            self.final_mean_, self.final_std_ = (
                float(np.mean(finals)),
                float(np.std(finals, ddof=1)),
            )
            self.params_ = {"final_mean": self.final_mean_, "batches": batches}
            return self
        self.grid_ = np.linspace(0.0, float(np.max(elapsed_hours(samples))), GRID_POINTS)
        curves = batch_trajectories(samples, self.grid_)
        seen = np.sum(~np.isnan(curves), axis=0)
        self.mean_ = np.where(seen > 0, np.nanmean(np.where(seen > 0, curves, 0.0), axis=0), 0.0)
        spread = np.nanstd(np.where(seen > 1, curves, np.nan), axis=0, ddof=1)
        self.std_ = np.nan_to_num(pd.Series(spread).ffill().bfill().to_numpy(), nan=0.0)
        self.mean_ = pd.Series(np.where(seen > 0, self.mean_, np.nan)).ffill().bfill().to_numpy()
        self.params_ = {"batches": batches, "horizon_h": float(self.grid_[-1])}
        return self

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        if self.task == "harvest":
            mean = np.full(len(histories), self.final_mean_)
            half = np.full(len(histories), self.t_ * self.final_std_)
        else:
            elapsed = np.array([float(h[TIME].iloc[-1] - h[TIME].iloc[0]) for h in histories])
            mean = np.interp(elapsed, self.grid_, self.mean_)
            half = self.t_ * np.interp(elapsed, self.grid_, self.std_)
        return Prediction(mean, mean - half, mean + half)


def naive_rmse(train: Samples, test: Samples, task: Task) -> float:
    """RMSE of the naive forecast (fitted on `train`) on `test`."""
    predicted: FloatArray = NaiveModel(task).fit(train).predict(test.histories).mean
    return float(np.sqrt(np.mean((predicted - test.targets) ** 2)))
