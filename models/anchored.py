"""Soft sensor mode "assays": any soft-sensor candidate corrected by the batch's own lab titers.

Plants do this by hand ("bias update"): when the lab reports the titer of a sample, the soft
sensor's offset at that time is carried forward, ŷ(t) = base(t) + (y_lab − base(t_lab)). A
soft sensor's error is mostly a slowly varying offset of the whole batch, so this removes most
of it; what is left grows with the age of the newest assay. Before the first assay the base
candidate answers alone ("online"); `Prediction.mode` says which mode answered each history.

Intervals: the base's out-of-fold predictions (`oof_`, from models that never saw the batch)
give corrected residuals one and two assays back; their growth with age sets an exponent p in
[0.5, 1] (random walk … steady drift), and `models.calibration` the rest, with the width
scaled by ((age + a₀) / (Δ + a₀))^p, Δ the usual spacing of assays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bioprocessml.dataset import TIME
from models.base import FloatArray, Prediction, Samples, Task
from models.calibration import IntervalCalibration, elapsed_hours
from models.online import FeatureView

ONLINE, ASSAYS = "online", "assays"
MIN_EXPONENT, MAX_EXPONENT = 0.5, 1.0


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
        """Age exponent and interval calibration from the base's out-of-fold predictions."""
        oof, y = self.base.oof_, samples.targets
        residual, ages = {}, {}
        for back in (1, 2):
            index, age = previous_assays(samples, back)
            ok = index >= 0
            corrected = np.full(len(y), np.nan)
            corrected[ok] = oof[ok] + y[index[ok]] - oof[index[ok]]
            residual[back], ages[back] = y - corrected, age
        self.spacing_ = float(np.nanmedian(ages[1]))
        self.offset_ = 0.1 * self.spacing_
        rms = [float(np.sqrt(np.nanmean(residual[b] ** 2))) for b in (1, 2)]
        growth = np.log((2 * self.spacing_ + self.offset_) / (self.spacing_ + self.offset_))
        exponent = np.log(max(rms[1], 1e-12) / max(rms[0], 1e-12)) / growth
        self.exponent_ = float(np.clip(exponent, MIN_EXPONENT, MAX_EXPONENT))
        self.calibration_ = IntervalCalibration.fit(
            residual[1], elapsed_hours(samples.histories), samples.groups,
            relative=self._relative(ages[1]),
        )  # fmt: skip
        self.params_ = {
            "base": self.base.name, "assay_spacing_h": self.spacing_,
            "age_exponent": self.exponent_, "calibration_factor": self.calibration_.factor,
        }  # fmt: skip
        return self

    def _relative(self, age: FloatArray) -> FloatArray:
        ratio = (np.nan_to_num(age) + self.offset_) / (self.spacing_ + self.offset_)
        return np.asarray(ratio**self.exponent_, dtype=float)

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
