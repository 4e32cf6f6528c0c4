"""From batch histories to model inputs, with columns chosen through the dataset spec's roles.

A *history* is a batch's canonical frame up to the prediction time. Tabular models (PLS, GP) see
one feature vector per history; the LSTM sees the history resampled on a fixed time grid.
The soft sensor uses online sensors only (the target's own assay would leak); the harvest
forecast may also use the offline assays measured so far.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.spec import DatasetSpec
from models.base import FloatArray, Samples, Task

HARVEST_FRACTIONS = tuple(np.round(np.arange(0.1, 1.0001, 0.05), 3))
RECENT_H = 0.5


@dataclass(frozen=True)
class FeatureSpec:
    """The part of a dataset spec a model needs at prediction time (stored with the model)."""

    online: tuple[str, ...]
    cumulative: tuple[str, ...]  # integrated over time: feeds (volume fed)
    integrated: tuple[str, ...]  # integrated deviation from start: off-gas (≈ O2 used, CO2 made)
    offline: tuple[str, ...]
    target: str

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> FeatureSpec:
        return cls(
            online=tuple(v.name for v in spec.online),
            cumulative=tuple(spec.names_with(role="feed")),
            integrated=tuple(spec.names_with(role="offgas")),
            offline=tuple(v.name for v in spec.offline),
            target=spec.target,
        )

    def names(self, task: Task) -> list[str]:
        names = ["elapsed_h", *[f"{n}_now" for n in self.online]]
        names += [f"{n}_cum" for n in self.cumulative] + [f"{n}_int" for n in self.integrated]
        if task == "harvest":
            names += [f"{n}_last" for n in self.offline] + [f"{n}_rate" for n in self.offline]
            names += ["offline_age_h"]
        return names


def _integral(time: FloatArray, values: FloatArray) -> float:
    ok = ~np.isnan(values)
    if ok.sum() < 2:
        return 0.0
    return float(np.trapezoid(values[ok], time[ok]))


def tabular_features(history: pd.DataFrame, fs: FeatureSpec, task: Task) -> FloatArray:
    """One feature vector for a history (see `FeatureSpec.names` for the order)."""
    time = history[TIME].to_numpy(dtype=float)
    now = time[-1]
    recent = history[time >= now - RECENT_H]
    row = [now - time[0]]
    row += [float(recent[n].mean()) if recent[n].notna().any() else np.nan for n in fs.online]
    row += [_integral(time, history[n].to_numpy(dtype=float)) for n in fs.cumulative]
    for name in fs.integrated:
        values = history[name].to_numpy(dtype=float)
        start = values[~np.isnan(values)][:12].mean() if (~np.isnan(values)).any() else 0.0
        row.append(abs(_integral(time, values - start)))
    if task == "harvest":
        row += offline_features(history, fs)
    return np.asarray(row, dtype=float)


def offline_features(history: pd.DataFrame, fs: FeatureSpec) -> list[float]:
    """Last assay of each offline variable, its mean rate so far (last value / its elapsed
    time: robust to how long ago it was sampled), and the age of the newest assay."""
    time = history[TIME].to_numpy(dtype=float)
    last, rate = [], []
    for name in fs.offline:
        values = history[name].to_numpy(dtype=float)
        seen = np.flatnonzero(~np.isnan(values))
        value = float(values[seen[-1]]) if len(seen) else 0.0
        elapsed = time[seen[-1]] - time[0] if len(seen) else 0.0
        last.append(value)
        rate.append(value / elapsed if elapsed > 0 else 0.0)
    sampled = history[list(fs.offline)].notna().any(axis=1).to_numpy()
    age = time[-1] - time[sampled][-1] if sampled.any() else time[-1] - time[0]
    return [*last, *rate, float(age)]


def feature_matrix(
    histories: list[pd.DataFrame], fs: FeatureSpec, task: Task, fill: FloatArray | None = None
) -> FloatArray:
    """Stacked feature vectors. A missing value is filled with `fill` (the training means a
    fitted model keeps) or, when fitting (`fill` None), with this matrix's column means."""
    return fill_missing(np.vstack([tabular_features(h, fs, task) for h in histories]), fill)


def fill_missing(matrix: FloatArray, fill: FloatArray | None) -> FloatArray:
    """`matrix` with its missing values filled as `feature_matrix` says (a copy if any is)."""
    missing = np.isnan(matrix)
    if missing.any():
        values = fill if fill is not None else np.nan_to_num(np.nanmean(matrix, axis=0))
        rows, cols = np.nonzero(missing)
        matrix = matrix.copy()
        matrix[rows, cols] = values[cols]
    return matrix


def without_own_assay(history: pd.DataFrame, target: str) -> pd.DataFrame:
    """The history up to a sample, without that sample's lab result of `target` (a copy): it is
    not known when the sample is drawn, and a `+assays` model would simply return it."""
    history = history.copy()
    last = history[TIME].to_numpy(dtype=float)[-1]
    history.loc[history[TIME] >= last - 1e-9, target] = np.nan
    return history


def make_samples(batches: list[pd.DataFrame], fs: FeatureSpec, task: Task) -> Samples:
    """Cut each whole batch into training or test samples (never mixing batches). A soft-sensor
    sample is the titer at an assay, from the history up to it without that assay's result:
    a model that reads the batch's own assays (`+assays`) must not see the answer."""
    histories, targets, groups, times, fractions = [], [], [], [], []
    for batch in batches:
        time = batch[TIME].to_numpy(dtype=float)
        assays = batch[[TIME, fs.target]].dropna()
        if assays.empty:
            continue
        duration = time[-1] - time[0]
        if task == "soft_sensor":
            cuts = [(t, y) for t, y in assays.itertuples(index=False) if t > time[0]]
        else:
            final = float(assays[fs.target].iloc[-1])
            cuts = [(time[0] + f * duration, final) for f in HARVEST_FRACTIONS]
        for cut, target in cuts:
            history = batch[time <= cut + 1e-9]
            if task == "soft_sensor":
                history = without_own_assay(history, fs.target)
            histories.append(history)
            targets.append(target)
            groups.append(str(batch[BATCH_ID].iloc[0]))
            times.append(cut)
            fractions.append((cut - time[0]) / duration if duration > 0 else 1.0)
    return Samples(
        histories, np.asarray(targets, float), np.asarray(groups), np.asarray(times, float),
        np.asarray(fractions, float),
    )  # fmt: skip
