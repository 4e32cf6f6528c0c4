"""Per-feature limits for one new batch's summary features, and which exceedances count as drift.

A feature's limits are the reference mean ± the larger of
- a Student prediction interval, t·sd·sqrt(1+1/n) with n-1 df, at a per-feature level from a
  weighted Bonferroni split of a level (`feature_levels`): a normal Gaussian batch has any
  feature beyond its limits with probability ≤ that level;
- a *resolution*: the smallest change that counts, `tolerance` × the channel's scale, in the
  feature's units (`feature_resolution`). A feature constant over the reference (a recipe
  set-point, a controller output pinned at its bound) thus gets limits of ± a tolerance, not
  ± 1e-9, and a tightly controlled channel is not flagged for a change too small to matter.

Real batches have heavy tails: a pH control loop saturating for a day moves a phase mean 20-30
reference sd in a batch that is otherwise normal. Such a one-batch excursion is not a process
change, so it is reported but does not alarm. What alarms (`judge_features`):
- *recipe*: a feature of a recipe channel (a channel whose phase means are identical in every
  reference batch: a set-point profile) beyond its limits: a recipe is deterministic, so any
  change beyond the tolerance is a recipe change, at once;
- *confirmed*: any other feature beyond its limits on the same side in this batch and in each
  of the `confirm - 1` batches before it. A process change persists; a disturbance does not.
  Two batches beyond on the same side by chance: Σ level_f²/2 for Gaussian features, so the
  single-batch level can be loose (0.2: ~0.02 % a batch over ~80 features); with heavy tails
  measured ~1 % a batch (benchmarks/drift_quality.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from bioprocessml.spec import DatasetSpec
from monitoring.summary import PHASES, SEP, feature_column

# Share of the error budget for the few outcome features (cumulative feed, integrated off-gas,
# harvest assays: `summary.outcome_features`): what the whole batch consumed and made, the soft
# sensor's inputs and target. A raw-material lot with 20 % lower yield moves each by ~4-5
# batch-to-batch sd; this split catches it in 2 batches more often than an even split
# (simulator, 8-12 reference batches: 4/5 seeds vs 2/5; benchmarks/drift_quality.py).
PRIORITY_SHARE = 0.5
FLAT = 1e-9  # relative: a reference sd this small is "constant"


def channel_scales(
    frames: list[pd.DataFrame],
    columns: list[str],
    ranges: dict[str, tuple[float, float]] | None = None,
) -> pd.Series:
    """Scale of each channel: the 1st-99th percentile spread of its readings over the reference
    batches; for a channel flat in all of them, the width of the spec's range if known, else
    |median|, else 1."""
    rows = pd.concat([f.reindex(columns=columns) for f in frames], ignore_index=True).astype(float)
    spread = rows.quantile(0.99) - rows.quantile(0.01)
    ranges = ranges or {}
    out = {}
    for column in columns:
        value = float(spread.get(column, np.nan))
        if not np.isfinite(value) or value <= 0:
            low_high = ranges.get(column)
            median = abs(float(rows[column].median())) if rows[column].notna().any() else 0.0
            value = low_high[1] - low_high[0] if low_high else (median or 1.0)
        out[column] = value
    return pd.Series(out, dtype=float)


def feature_resolution(
    reference: pd.DataFrame, scales: pd.Series, duration_h: float, tolerance: float
) -> pd.Series:
    """The smallest change of each feature that counts: a sustained offset of `tolerance` ×
    the channel's scale, in the feature's units (over a phase for a slope, over the batch for
    a cumulative or integrated total). A noise feature's is `tolerance` × the channel's typical
    reference noise (a stuck probe loses all of it), or × its scale if the channel has none; a
    share of unchanged readings' is `tolerance` itself."""
    phase_h = duration_h / len(PHASES)
    out = {}
    for key in reference.columns:
        stat = key.rpartition(SEP)[2]
        base = tolerance * float(scales.get(feature_column(key), np.nan))
        if stat.endswith("slope"):
            base /= phase_h
        elif stat in ("cumulative", "integrated"):
            base *= duration_h
        elif stat.endswith("flat"):  # a share of readings: the tolerance itself
            base = tolerance
        elif stat.endswith("noise"):
            typical = float(reference[key].median()) if reference[key].notna().any() else 0.0
            base = tolerance * typical if typical > 0 else base
        out[key] = base
    return pd.Series(out, dtype=float)


def feature_levels(features: pd.Index, priority: list[str], p_value: float) -> pd.Series:
    """Two-sided test level per feature: a weighted Bonferroni split of `p_value`.

    `PRIORITY_SHARE` of the budget goes to the priority features (the outcome features),
    the rest to all other features, evenly within each group. The levels add up to `p_value`."""
    first = features.isin(priority)
    share = PRIORITY_SHARE if first.any() and (~first).any() else float(first.all())
    levels = pd.Series(0.0, index=features)
    if first.any():
        levels[first] = p_value * share / first.sum()
    if (~first).any():
        levels[~first] = p_value * (1 - share) / (~first).sum()
    return levels


def prediction_limits(
    reference: pd.DataFrame, resolution: pd.Series, p_value: float, priority: list[str]
) -> pd.DataFrame:
    """Per feature: mean, half-width, limits and whether it belongs to a recipe channel.
    Features with fewer than two reference values get no limits and are not tested."""
    n = reference.notna().sum()
    usable = n[n >= 2].index
    ref = reference[usable]
    n, mean, sd = n[usable], ref.mean(), ref.std(ddof=1)
    level = feature_levels(usable, priority, p_value)
    t = pd.Series(stats.t.ppf(1 - level / 2, n - 1), index=usable)
    floor = resolution.reindex(usable).fillna(0.0)
    half = np.maximum(t * sd * np.sqrt(1 + 1 / n), floor)
    half = half.where(half > 0, FLAT * (mean.abs() + 1.0))
    return pd.DataFrame(
        {"mean": mean, "half": half, "lower": mean - half, "upper": mean + half,
         "recipe": recipe_features(ref, mean, sd, floor)},
    )  # fmt: skip


def recipe_features(
    reference: pd.DataFrame, mean: pd.Series, sd: pd.Series, floor: pd.Series
) -> pd.Series:
    """Features of recipe channels: channels whose phase means are all constant over the
    reference (sd within float noise of zero), i.e. a set-point profile every batch follows.
    A controller output that happens to sit at its bound in one phase is not one."""
    flat = sd <= FLAT * (mean.abs() + floor)
    columns = pd.Series([feature_column(k) for k in reference.columns], index=reference.columns)
    phase_means = [k for k in reference.columns if k.endswith("_mean")]
    recipe = flat[phase_means].groupby(columns[phase_means]).all()
    return columns.map(recipe.to_dict()).eq(True)


def exceedance(summary: pd.Series, limits: pd.DataFrame) -> pd.Series:
    """(value - mean) / half-width per feature: beyond the limits where |·| > 1; NaN untested."""
    return (summary.reindex(limits.index) - limits["mean"]) / limits["half"]


def beyond_side(ratio: pd.Series) -> pd.Series:
    """+1 above the upper limit, -1 below the lower, 0 within or untested."""
    return np.sign(ratio).where(ratio.abs() > 1, 0.0).fillna(0.0)


def judge_features(
    ratio: pd.Series, previous: list[pd.Series], recipe: pd.Series, confirm: int
) -> tuple[pd.Series, pd.Series]:
    """(recipe alarms, confirmed alarms) as boolean Series over the tested features.

    `ratio`: this batch's exceedance; `previous`: the exceedances of the batches before it
    against the same limits, newest last. A non-recipe feature alarms when it is beyond on the
    same side in this batch and the `confirm - 1` batches before; with fewer batches before it
    than that, it cannot alarm yet."""
    side = beyond_side(ratio)
    recipe_alarm = side.ne(0) & recipe.reindex(side.index, fill_value=False)
    confirmed = side.ne(0) & ~recipe_alarm
    needed = previous[len(previous) - (confirm - 1) :] if confirm > 1 else []
    if len(needed) < confirm - 1:
        return recipe_alarm, confirmed & False
    for earlier in needed:
        confirmed &= beyond_side(earlier.reindex(side.index)).eq(side)
    return recipe_alarm, confirmed


def spec_ranges(spec: DatasetSpec) -> dict[str, tuple[float, float]]:
    """The spec's plausible range of each variable, in canonical units (for `ranges`)."""
    return {v.name: v.canonical_range for v in spec.variables if v.canonical_range is not None}
