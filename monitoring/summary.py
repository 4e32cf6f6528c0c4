"""Per-batch summary features: what the drift tests compare instead of raw, autocorrelated rows.

Rows within a batch are strongly correlated, so tests on them flag most normal batches. One
vector per batch is a fair unit for a statistical test: for each online sensor, the mean and
the linear slope in the early, mid and late third of the batch, its final value, its
late-phase noise (a robust spread of step-to-step changes, which a stuck probe loses) and the
late-phase share of readings equal to the one before (≈1 for a stuck probe whatever its
noise was, ≈0 for a live analogue signal, high for a recipe profile); the
whole-batch balances the soft sensor also uses (cumulative feed, integrated off-gas deviation);
and the harvest assay of each offline variable (what the batch ended with).

Keys are `"<column>__<stat>"`, so every feature maps back to its source column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME
from models.base import FloatArray
from models.features import RECENT_H, FeatureSpec, tabular_features

SEP = "__"
PHASES = ("early", "mid", "late")
PHASE_STATS = ("mean", "slope")
MIN_POINTS = 3
NOISE_TRIM = 0.1
HARVEST_FRACTION = 0.05  # an assay in the last 5 % of the batch counts as the harvest assay
PHASE_WORDS = {"early": "early-phase", "mid": "mid-phase", "late": "late-phase"}
STAT_WORDS = {
    "mean": "mean",
    "slope": "slope [/h]",
    "noise": "noise (spread of step-to-step changes)",
    "flat": "share of readings unchanged from the one before",
    "final": "final value",
    "cumulative": "cumulative total",
    "integrated": "integrated deviation from start",
    "harvest": "harvest assay",
}


def feature_key(column: str, stat: str) -> str:
    return f"{column}{SEP}{stat}"


def feature_column(key: str) -> str:
    """The source column of a summary feature (`"ph__late_mean"` → `"ph"`)."""
    column, sep, _ = key.rpartition(SEP)
    if not sep or not column:
        raise ValueError(f"{key!r} is not a summary feature key (<column>{SEP}<stat>)")
    return column


def describe_feature(key: str) -> str:
    """Plain words for a feature: `"ph__late_mean"` → `"late-phase mean"`."""
    stat = key.rpartition(SEP)[2]
    phase, _, rest = stat.partition("_")
    if phase in PHASE_WORDS:
        return f"{PHASE_WORDS[phase]} {STAT_WORDS.get(rest, rest)}"
    return STAT_WORDS.get(stat, stat)


def outcome_features(fs: FeatureSpec) -> list[str]:
    """What the whole batch consumed and made: cumulative feed and integrated off-gas (the soft
    sensor's own inputs) and the harvest assays (its target among them)."""
    keys = [feature_key(c, "cumulative") for c in fs.cumulative]
    keys += [feature_key(c, "integrated") for c in fs.integrated]
    return keys + [feature_key(c, "harvest") for c in fs.offline]


def summary_names(fs: FeatureSpec) -> list[str]:
    """Every summary key of a feature spec, in a fixed order."""
    names = []
    for column in fs.online:
        names += [feature_key(column, f"{p}_{s}") for p in PHASES for s in PHASE_STATS]
        names += [feature_key(column, s) for s in ("final", "late_noise", "late_flat")]
    return names + outcome_features(fs)


def phase_stats(time: FloatArray, values: FloatArray) -> tuple[float, float]:
    """Mean and least-squares slope of one phase; NaN where too few readings."""
    ok = ~np.isnan(values)
    if ok.sum() < MIN_POINTS:
        return np.nan, np.nan
    t, y = time[ok], values[ok]
    dt = t - t.mean()
    denom = float(np.dot(dt, dt))
    slope = float(np.dot(dt, y - y.mean()) / denom) if denom > 0 else np.nan
    return float(y.mean()), slope


def noise_level(values: FloatArray) -> float:
    """Noise of a reading: mean size of its step-to-step changes, leaving out the largest
    tenth, so trends and a few jumps hardly move it while a probe stuck for part of the batch
    drives it to zero. (A median would be quantised by integer readings, e.g. rpm.)"""
    steps = np.sort(np.abs(np.diff(values[~np.isnan(values)])))
    if len(steps) < MIN_POINTS:
        return np.nan
    return float(steps[: max(1, int(len(steps) * (1 - NOISE_TRIM)))].mean())


def flat_share(values: FloatArray) -> float:
    """Share of readings exactly equal to the reading before: a probe stuck for the whole
    phase gives 1, a live analogue signal 0."""
    seen = values[~np.isnan(values)]
    if len(seen) <= MIN_POINTS:
        return np.nan
    return float(np.mean(np.diff(seen) == 0))


def sensor_summary(time: FloatArray, values: FloatArray, column: str) -> dict[str, float]:
    """Phase statistics in thirds of the batch's own duration, and the mean of the last
    `RECENT_H` hours as final value (one reading alone is mostly noise)."""
    start, end = time[0], time[-1]
    edges = start + (end - start) * np.array([0.0, 1 / 3, 2 / 3, 1.0])
    out: dict[str, float] = {}
    for i, phase in enumerate(PHASES):
        upper = time <= edges[i + 1] if i == len(PHASES) - 1 else time < edges[i + 1]
        mask = (time >= edges[i]) & upper
        for stat, value in zip(PHASE_STATS, phase_stats(time[mask], values[mask]), strict=True):
            out[feature_key(column, f"{phase}_{stat}")] = value
    recent = values[time >= end - RECENT_H]
    recent = recent[~np.isnan(recent)]
    out[feature_key(column, "final")] = float(recent.mean()) if len(recent) else np.nan
    late = time >= edges[2]
    out[feature_key(column, "late_noise")] = noise_level(values[late])
    out[feature_key(column, "late_flat")] = flat_share(values[late])
    return out


def batch_summary(frame: pd.DataFrame, fs: FeatureSpec) -> dict[str, float]:
    """Summary features of one whole batch (see the module docstring); NaN where a sensor has
    too few readings, never an exception for missing values."""
    frame = frame.sort_values(TIME)
    time = frame[TIME].to_numpy(dtype=float)
    if len(time) < 2:
        return dict.fromkeys(summary_names(fs), np.nan)
    needed = {*fs.online, *fs.cumulative, *fs.integrated, *fs.offline}
    whole = frame.assign(**{c: np.nan for c in needed if c not in frame})
    out: dict[str, float] = {}
    for column in fs.online:
        out.update(sensor_summary(time, whole[column].to_numpy(dtype=float), column))
    tabular = dict(
        zip(fs.names("soft_sensor"), tabular_features(whole, fs, "soft_sensor"), strict=True)
    )
    for column in fs.cumulative:
        out[feature_key(column, "cumulative")] = _nan_if_missing(
            whole, column, tabular[f"{column}_cum"]
        )
    for column in fs.integrated:
        out[feature_key(column, "integrated")] = _nan_if_missing(
            whole, column, tabular[f"{column}_int"]
        )
    for column in fs.offline:
        values = whole[column].to_numpy(dtype=float)
        out[feature_key(column, "harvest")] = harvest_assay(time, values)
    return out


def harvest_assay(time: FloatArray, values: FloatArray) -> float:
    """The last assay, if it was taken at the end of the batch; NaN otherwise (a missing
    harvest sample must not look like a low one)."""
    seen = np.flatnonzero(~np.isnan(values))
    if not len(seen) or time[seen[-1]] < time[-1] - HARVEST_FRACTION * (time[-1] - time[0]):
        return np.nan
    return float(values[seen[-1]])


def _nan_if_missing(frame: pd.DataFrame, column: str, value: float) -> float:
    """`tabular_features` integrates a missing column to 0; a summary reports it as unknown."""
    return float(value) if frame[column].notna().sum() >= 2 else np.nan


def summary_table(frames: list[pd.DataFrame], fs: FeatureSpec) -> pd.DataFrame:
    """One row of summary features per batch, indexed by batch id, columns in a fixed order."""
    rows = {str(f[BATCH_ID].iloc[0]): batch_summary(f, fs) for f in frames}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=summary_names(fs), dtype=float)
    table.index.name = BATCH_ID
    return table
