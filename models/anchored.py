"""Soft sensor mode "assays": any soft-sensor candidate corrected by the batch's own lab titers.

Plants do this by hand ("bias update"): when the lab reports the titer of a sample, the soft
sensor's offset at that time is carried forward, ŷ(t) = base(t) + (y_lab − base(t_lab)). A
soft sensor's error is mostly a slowly varying offset of the whole batch, so this removes most
of it; what is left grows with the age of the newest assay. Before the first assay the base
candidate answers alone ("online"); `Prediction.mode` says which mode answered each history.

Intervals: the base's out-of-fold errors e = y − oof (from models that never saw the batch)
give the variogram of the error within a batch: the mean squared change of e between two
assays a given age apart, fitted as V(age) = nugget + random walk (∝ age) + steady drift
(∝ age²). The nugget is what does not shrink when the newest assay is fresh: the lab's
measurement error and the base's hour-to-hour jitter (both ends of a pair carry the lab's
error, one end at prediction time: the nugget errs wide). Without it the width went to ~0 at
a fresh assay and the youngest third of hourly predictions missed most often. The width is
scaled by √(V(age) / V(Δ)), Δ the usual spacing of assays, and `models.calibration` sets the
rest from the corrected residuals one assay back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from bioprocessml.dataset import TIME
from models.base import FloatArray, Prediction, Samples, Task
from models.calibration import IntervalCalibration, elapsed_hours
from models.online import FeatureView

ONLINE, ASSAYS = "online", "assays"
MAX_LAG_SPACINGS = 3.0  # variogram fitted to pairs up to this many assay spacings apart
LAG_BIN = 0.25  # width of the variogram's age bins, in assay spacings


def previous_assays(samples: Samples, back: int) -> tuple[np.ndarray, np.ndarray]:
    """For each soft-sensor sample (one per assay), the index of the sample `back` assays
    earlier in the same batch (-1 if none) and the age in hours."""
    index, age = np.full(len(samples), -1), np.full(len(samples), np.nan)
    for g in np.unique(samples.groups):
        rows = np.flatnonzero(samples.groups == g)
        rows = rows[np.argsort(samples.times[rows])]
        index[rows[back:]] = rows[:-back] if back < len(rows) else []
        age[rows[back:]] = samples.times[rows[back:]] - samples.times[rows[:-back]]
    return index, age


def fit_variogram(
    error: FloatArray, times: FloatArray, groups: np.ndarray, spacing: float
) -> FloatArray:
    """Weights (nugget, random walk, drift) of V(a) = w₀ + w₁·a + w₂·a², a = age / spacing:
    the mean squared change of `error` between two samples of one batch `age` hours apart
    (pairs up to `MAX_LAG_SPACINGS` spacings, in bins of `LAG_BIN` spacings), fitted by
    non-negative least squares weighted by √pairs: white noise, a random walk and a steady
    drift, the three ways a soft sensor's error moves away from the last assay."""
    lags, squares = [], []
    for g in np.unique(groups):
        rows = np.flatnonzero((groups == g) & np.isfinite(error))
        i, j = np.triu_indices(len(rows), 1)
        lag = np.abs(times[rows[j]] - times[rows[i]])
        near = (lag > 0) & (lag <= MAX_LAG_SPACINGS * spacing)
        lags.append(lag[near] / spacing)
        squares.append((error[rows[j]] - error[rows[i]])[near] ** 2)
    lag, square = np.concatenate(lags), np.concatenate(squares)
    if len(lag) == 0:
        return np.array([0.0, 1.0, 0.0])
    at = np.minimum((lag / LAG_BIN).astype(int), int(MAX_LAG_SPACINGS / LAG_BIN) - 1)
    count = np.bincount(at).astype(float)
    used = count > 0
    mean_lag = np.bincount(at, lag)[used] / count[used]
    mean_square = np.bincount(at, square)[used] / count[used]
    weight = np.sqrt(count[used])
    design = np.column_stack([np.ones_like(mean_lag), mean_lag, mean_lag**2])
    weights, _ = optimize.nnls(design * weight[:, None], mean_square * weight)
    return weights if weights.sum() > 0 else np.array([0.0, 1.0, 0.0])


class AssayAnchoredModel:
    """Candidate `<base>+assays`: `fit` fits the base then `calibrate`s; a base fitted already
    (e.g. in a benchmark) is wrapped with `calibrate` alone. The base needs `oof_` (out-of-fold
    means of its training samples) and a `calibration_` after fitting."""

    task: Task = "soft_sensor"

    def __init__(self, base: Any) -> None:
        if base.task != "soft_sensor":
            raise ValueError("only a soft sensor can be corrected by the batch's assays")
        self.base = base
        self.name = f"{base.name}+assays"
        self.features = base.features
        self.params_: dict[str, Any] = {}

    def fit(self, samples: Samples) -> AssayAnchoredModel:
        self.base.fit(samples)
        return self.calibrate(samples)

    def calibrate(self, samples: Samples) -> AssayAnchoredModel:
        """Variogram and interval calibration from the base's out-of-fold predictions."""
        oof, y = self.base.oof_, samples.targets
        index, age = previous_assays(samples, 1)
        ok = index >= 0
        corrected = np.full(len(y), np.nan)
        corrected[ok] = oof[ok] + y[index[ok]] - oof[index[ok]]
        self.spacing_ = float(np.nanmedian(age))
        self.variogram_ = fit_variogram(y - oof, samples.times, samples.groups, self.spacing_)
        self.calibration_ = IntervalCalibration.fit(
            y - corrected, elapsed_hours(samples.histories), samples.groups,
            relative=self._relative(age),
        )  # fmt: skip
        self.params_ = {
            "base": self.base.name, "assay_spacing_h": self.spacing_,
            "nugget_share": float(self.variogram_[0] / self._variance(1.0)),
            "calibration_factor": self.calibration_.factor,
        }  # fmt: skip
        return self

    def _variance(self, ages_in_spacings: FloatArray | float) -> FloatArray:
        a = np.asarray(ages_in_spacings, float)
        return np.asarray(self.variogram_ @ np.array([np.ones_like(a), a, a**2]), dtype=float)

    def _relative(self, age: FloatArray) -> FloatArray:
        ratio = self._variance(np.maximum(np.nan_to_num(age), 0.0) / self.spacing_)
        return np.asarray(np.sqrt(ratio / self._variance(1.0)), dtype=float)

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        if not histories:
            return Prediction.gaussian(np.zeros(0), np.zeros(0))
        target = self.features.target
        last = [_newest_assay(h, target) for h in histories]
        online = self.base.predict(histories)
        anchored = [i for i, row in enumerate(last) if row is not None]
        mean, lower, upper = online.mean.copy(), online.lower.copy(), online.upper.copy()
        modes = [ONLINE] * len(histories)
        if anchored:
            cuts = [histories[i].iloc[: last[i] + 1] for i in anchored]  # type: ignore[operator]
            at_lab = self.base.predict(cuts).mean
            lab = np.array([float(c[target].iloc[-1]) for c in cuts])
            now = np.array([float(histories[i][TIME].iloc[-1]) for i in anchored])
            age = now - np.array([float(c[TIME].iloc[-1]) for c in cuts])
            fixed = self.calibration_.interval(
                online.mean[anchored] + lab - at_lab,
                elapsed_hours([histories[i] for i in anchored]),
                relative=self._relative(age),
            )  # fmt: skip
            mean[anchored], lower[anchored], upper[anchored] = (
                fixed.mean, fixed.lower, fixed.upper,
            )  # fmt: skip
            for i in anchored:
                modes[i] = ASSAYS
        return Prediction(mean, lower, upper, tuple(modes))

    def predict_online(self, view: FeatureView) -> Prediction:
        """The same answer as `predict` of the history the view was made of (the base must
        predict from views too, `answers_online`)."""
        online = self.base.predict_online(view)
        cut = view.at_assay
        if cut is None:
            return Prediction(online.mean, online.lower, online.upper, (ONLINE,))
        at_lab = self.base.predict_online(cut).mean
        age = np.array([view.time]) - np.array([cut.time])
        fixed = self.calibration_.interval(
            online.mean + np.array([cut.target]) - at_lab, np.array([view.elapsed]),
            relative=self._relative(age),
        )  # fmt: skip
        return Prediction(fixed.mean, fixed.lower, fixed.upper, (ASSAYS,))


def _newest_assay(history: pd.DataFrame, target: str) -> int | None:
    """Row position of the newest assay of the target in the history, if any (none if the
    caller sent no target column)."""
    if target not in history.columns:
        return None
    seen = np.flatnonzero(history[target].notna().to_numpy())
    return int(seen[-1]) if len(seen) else None
