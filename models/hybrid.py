"""Hybrid candidate: a mechanistic product mass balance (`models.massbalance`) whose production
rate is learned from the online signals, integrated over the batch.

Soft sensor: the titer integrated from zero at the batch start. Harvest forecast: the titer now
(the newest titer assay plus what the mass balance says was made since, or the integral alone
before any assay) turned into a final titer by persistence: the batch's deviation from the mean
titer trajectory of past batches carries to harvest with a gain β(elapsed time), fitted by
kernel-weighted least squares over past batches. Intervals: `models.calibration` on residuals
of batches held out by GroupKFold (the rate, mean trajectory, mean final titer and gain refitted
without them); the same folds choose the L2 penalty of the rate (unpenalized, it fitted twelve
batches' noise: RMSE 1.29 vs 0.93 g/L).

What it does well: physically shaped answers (titer ≥ 0, zero before production starts, diluted
by the measured feeds), few parameters (one linear rate: robust with a dozen batches), cheap
to fit. Badly: the online-only estimate drifts over the batch when this batch's productivity
differs from what its online signals show; the rate is linear in the signals, so a process
change that moves a tightly controlled input by many standard deviations (a +1 K temperature
set-point) makes a stale model extrapolate wildly (dev set: RMSE 6.6 g/L until retrained).
"""

from __future__ import annotations

import time as clock
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from bioprocessml.dataset import BATCH_ID, TIME
from models.base import FloatArray, Prediction, Samples, Task
from models.calibration import IntervalCalibration, elapsed_hours
from models.features import FeatureSpec
from models.massbalance import RateModel, Series, integrate, to_series, train_rate
from models.threads import torch_threads

FOLDS = 4
BANDWIDTH_SHARE = 0.05
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 on the rate's weights, chosen by grouped CV
_CrossFit = tuple[float, RateModel, list[tuple[np.ndarray, RateModel]], float]


def whole_batches(samples: Samples) -> list[pd.DataFrame]:
    """The longest history of each batch, in order of first appearance."""
    longest: dict[str, pd.DataFrame] = {}
    for history, group in zip(samples.histories, samples.groups, strict=True):
        if group not in longest or len(history) > len(longest[group]):
            longest[group] = history
    return list(longest.values())


def _kernel(grid: FloatArray, at: FloatArray, bandwidth: float) -> FloatArray:
    return np.exp(-0.5 * ((grid[:, None] - at[None, :]) / bandwidth) ** 2)


class HybridModel:
    """Candidate `hybrid` (see module docstring). `steps`: L-BFGS iterations of the rate fit
    (a third of them for each calibration fold, warm-started from the full fit)."""

    name = "hybrid"

    def __init__(self, task: Task, features: FeatureSpec, seed: int = 0, steps: int = 150) -> None:
        self.task, self.features, self.seed, self.steps = task, features, seed, steps
        self.params_: dict[str, Any] = {}
        self.rate_: RateModel | None = None
        self.oof_ = np.zeros(0)

    def fit(self, samples: Samples) -> HybridModel:
        start = clock.perf_counter()
        series = [to_series(h, self.features) for h in whole_batches(samples)]
        rows = np.vstack([s.inputs for s in series])
        self.mean_ = np.nanmean(rows, axis=0)
        self.std_ = np.nan_to_num(np.nanstd(rows, axis=0), nan=1.0)
        self.std_[self.std_ < 1e-12] = 1.0
        with torch_threads(1):
            fits = [self._cross_fit(series, ridge) for ridge in RIDGES]
            self.ridge_, self.rate_, folds, self.cv_rmse_ = min(fits, key=lambda f: f[3])
            now = self._oof_now(samples, folds)
        elapsed = elapsed_hours(samples.histories)
        if self.task == "harvest":
            self._fit_persistence(series, samples, now, elapsed, [held for held, _ in folds])
        else:
            self.oof_ = now
        self.calibration_ = IntervalCalibration.fit(
            samples.targets - self.oof_, elapsed, samples.groups
        )
        self.params_ = {
            "steps": self.steps, "ridge": self.ridge_, "cv_rmse": self.cv_rmse_,
            "product_loss_per_h": float(self.rate_.log_k.detach().exp()),
            "calibration_factor": self.calibration_.factor,
            "train_seconds": round(clock.perf_counter() - start, 2),
        }  # fmt: skip
        return self

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        if self.rate_ is None:
            raise RuntimeError("HybridModel.predict called before fit")
        if not histories:
            return Prediction.gaussian(np.zeros(0), np.zeros(0))
        with torch_threads(1):
            now = self._now(self.rate_, histories)
        elapsed = elapsed_hours(histories)
        mean = self._forecast(now, elapsed) if self.task == "harvest" else now
        return self.calibration_.interval(mean, elapsed)

    def _now(self, rate: RateModel, histories: list[pd.DataFrame]) -> FloatArray:
        """Titer at each history's end: integrated from the start (soft sensor) or, for the
        harvest forecast, from the newest titer assay on."""
        paths = self._paths(rate, histories)
        out = np.empty(len(histories))
        for i, (h, path) in enumerate(zip(histories, paths, strict=True)):
            out[i] = path[-1]
            if self.task == "harvest" and self.features.target in h.columns:
                assays = h[self.features.target].to_numpy(dtype=float)
                seen = np.flatnonzero(np.isfinite(assays))
                if len(seen):
                    out[i] = assays[seen[-1]] + path[-1] - path[seen[-1]]
        return np.maximum(out, 0.0)

    def _paths(self, rate: RateModel, histories: list[pd.DataFrame]) -> list[FloatArray]:
        """Integrated titer along each history. Cuts of one batch share the integral of its
        longest history (the rate at a row depends only on rows up to it)."""
        longest: dict[str, pd.DataFrame] = {}
        for h in histories:
            key = str(h[BATCH_ID].iloc[0])
            if key not in longest or len(h) > len(longest[key]):
                longest[key] = h
        keys = list(longest)
        series = [to_series(longest[k], self.features) for k in keys]
        shared = dict(zip(keys, integrate(rate, series, self.mean_, self.std_), strict=True))
        paths = []
        for h in histories:
            whole = longest[str(h[BATCH_ID].iloc[0])]
            n = len(h)
            if (
                whole[TIME].iloc[n - 1] == h[TIME].iloc[-1]
                and whole[TIME].iloc[0] == h[TIME].iloc[0]
            ):
                paths.append(shared[str(h[BATCH_ID].iloc[0])][:n])
            else:
                paths.append(
                    integrate(rate, [to_series(h, self.features)], self.mean_, self.std_)[0]
                )
        return paths

    def _cross_fit(self, series: list[Series], ridge: float) -> _CrossFit:
        """The rate fitted on all batches and on each GroupKFold fold's training batches, and
        the RMS error of the folds' integrated titer at the held-out batches' assays."""
        full = train_rate(series, self.mean_, self.std_, self.steps, self.seed, ridge=ridge)
        ids = np.array([s.batch_id for s in series])
        folds, squares = [], []
        for train, held in GroupKFold(min(FOLDS, len(ids))).split(ids, groups=ids):
            rate = train_rate(
                [series[i] for i in train], self.mean_, self.std_, max(10, self.steps // 3),
                self.seed, warm=full, ridge=ridge,
            )  # fmt: skip
            out = [series[i] for i in held]
            for s, path in zip(out, integrate(rate, out, self.mean_, self.std_), strict=True):
                seen = np.isfinite(s.assays)
                squares.append((path[seen] - s.assays[seen]) ** 2)
            folds.append((ids[held], rate))
        return ridge, full, folds, float(np.sqrt(np.mean(np.concatenate(squares))))

    def _oof_now(self, samples: Samples, folds: list[tuple[np.ndarray, RateModel]]) -> FloatArray:
        """Titer now for every training sample from a rate fitted without its batch."""
        now = np.full(len(samples), np.nan)
        for held, rate in folds:
            mask = np.isin(samples.groups, held)
            histories = [h for h, m in zip(samples.histories, mask, strict=True) if m]
            now[mask] = self._now(rate, histories)
        return now

    # --- harvest: persistence of the deviation from the mean trajectory ---

    def _fit_persistence(
        self, series: list[Series], samples: Samples, now: FloatArray, elapsed: FloatArray,
        folds: list[np.ndarray],
    ) -> None:  # fmt: skip
        """Mean trajectory, final titer and gain β(t) on a grid; `oof_` from all three fitted
        without the batches of each fold (`folds`: held-out batch ids, those of the rate's
        cross-fit; a mean that includes the batch pulls its residual towards zero by ~1/batches:
        too narrow intervals). Cost: folds × samples, linear in the batches."""
        seen = [np.isfinite(s.assays) for s in series]
        pairs = list(zip(series, seen, strict=True))
        times = np.concatenate([s.time[k] for s, k in pairs])
        values = np.concatenate([s.assays[k] for s, k in pairs])
        owners = np.concatenate([np.full(int(k.sum()), s.batch_id) for s, k in pairs])
        finals = np.array([s.assays[k][-1] for s, k in pairs])
        ids = np.array([s.batch_id for s in series])
        self.grid_ = np.linspace(0.0, float(times.max()), 100)
        self.bandwidth_ = max(BANDWIDTH_SHARE * float(times.max()), 1e-6)
        at_assays = _kernel(self.grid_, times, self.bandwidth_) + 1e-300
        at_samples = _kernel(self.grid_, elapsed, self.bandwidth_)

        def persistence(held: np.ndarray) -> tuple[FloatArray, float, FloatArray]:
            keep, use = ~np.isin(owners, held), ~np.isin(samples.groups, held)
            w = at_assays[:, keep]
            trajectory = (w @ values[keep]) / w.sum(axis=1)
            final = float(np.mean(finals[~np.isin(ids, held)]))
            deviation = now[use] - np.interp(elapsed[use], self.grid_, trajectory)
            ws = at_samples[:, use]
            num, den = ws @ (deviation * (samples.targets[use] - final)), ws @ deviation**2
            return trajectory, final, num / np.maximum(den, 1e-12)

        self.trajectory_, self.final_, self.gain_ = persistence(np.array([], dtype=ids.dtype))
        self.oof_ = np.empty(len(samples))
        for held in folds:
            mine = np.isin(samples.groups, held)
            trajectory, final, gain = persistence(held)
            deviation = now[mine] - np.interp(elapsed[mine], self.grid_, trajectory)
            self.oof_[mine] = final + np.interp(elapsed[mine], self.grid_, gain) * deviation

    def _forecast(self, now: FloatArray, elapsed: FloatArray) -> FloatArray:
        deviation = now - np.interp(elapsed, self.grid_, self.trajectory_)
        return self.final_ + np.interp(elapsed, self.grid_, self.gain_) * deviation

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        rate = state.pop("rate_")
        state["rate_state_"] = None if rate is None else (rate.state_dict(), rate.q_scale)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("rate_state_")
        self.__dict__.update(state)
        self.rate_ = None
        if saved is not None:
            weights, q_scale = saved
            self.rate_ = RateModel(weights["linear.weight"].shape[1], q_scale).double()
            self.rate_.load_state_dict(weights)
            self.rate_.eval()
