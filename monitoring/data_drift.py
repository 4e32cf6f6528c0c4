"""Data drift of one new batch, on per-batch summary features (see `monitoring.summary`).

The verdict (see `monitoring.drift_limits` for the limits and what counts):

- **Warm-up**: with fewer than `min_reference` reference batches nothing alarms; the result
  says it is warming up, and what it would have flagged.
- **Single batch**: each summary feature against limits from the reference batches (t
  prediction interval at a Bonferroni split of `limit_level` over all features, never narrower
  than a tolerance × the channel's scale). A recipe channel beyond its limits alarms at once; any
  other feature alarms when it is beyond on the same side in `confirm` consecutive batches.
  A feature beyond its limits in this batch only is reported as an excursion, not drift.
- **Window** (Evidently): the summary features of the new batch and the recent batches before
  it against the reference batches' (K-S per feature, drifted at p ≤ `p_value`). A sustained
  change moves many features at once: the window has drifted when the share of drifted
  features reaches `drift_share`. A change in a few features only is the single-batch test's.
- **Row level** (Evidently): each online sensor's raw readings of the new batch against
  subsampled reference readings. Rows within a batch are autocorrelated, so this flags most
  normal batches: a diagnostic for the report, never part of the verdict.

The batches under test (the new one and those confirming it) are left out of the reference
their limits come from, so a changed batch never widens its own limits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.settings import Thresholds
from models.features import FeatureSpec
from monitoring.drift_limits import (
    channel_scales,
    exceedance,
    feature_resolution,
    judge_features,
    prediction_limits,
)
from monitoring.summary import describe_feature, feature_column, outcome_features, summary_table

if TYPE_CHECKING:
    from monitoring.drift_report import EvidentlyScores

log = logging.getLogger(__name__)

DEFAULTS = Thresholds()
WINDOW_METHOD = "K-S"
Kind = Literal["recipe", "confirmed", "excursion"]


class ColumnDrift(BaseModel):
    column: str
    drifted: bool  # a recipe change or a confirmed change: counts as drift
    score: float  # largest |value - mean| / half-width over its features: > 1 is beyond limits
    features: list[str]  # the column's features beyond their limits in this batch, worst first
    kind: Kind | None = None  # why it is beyond: recipe / confirmed (drift) or excursion (not)


class DataDriftResult(BaseModel):
    batch_id: str
    drifted: bool
    warming_up: bool = False  # too few reference batches: nothing counts as drift yet
    reference_batches: int = 0
    drift_share: float  # share of summary features drifted in the window test
    columns: list[ColumnDrift]
    reasons: list[str]
    window_batches: list[str]
    feature_scores: dict[str, float]  # Evidently K-S p-value per summary feature (window)
    row_level: dict[str, float]  # Evidently K-S p-value per online sensor on raw rows


def batch_id_of(frame: pd.DataFrame) -> str:
    return str(frame[BATCH_ID].iloc[0])


def column_drifts(
    ratio: pd.Series, recipe: pd.Series, confirmed: pd.Series, columns: list[str]
) -> list[ColumnDrift]:
    """One `ColumnDrift` per source column, in the feature spec's order."""
    owner = pd.Series([feature_column(k) for k in ratio.index], index=ratio.index, dtype=object)
    result = []
    for column in columns:
        own = ratio[owner == column].abs().dropna()
        beyond = own[own > 1].sort_values(ascending=False)
        kind: Kind | None = None
        if (recipe & (owner == column)).any():
            kind = "recipe"
        elif (confirmed & (owner == column)).any():
            kind = "confirmed"
        elif not beyond.empty:
            kind = "excursion"
        score = float(own.max()) if not own.empty else 0.0
        drifted = kind in ("recipe", "confirmed")
        result.append(ColumnDrift(column=column, drifted=drifted, score=score,
                                  features=list(beyond.index), kind=kind))  # fmt: skip
    return result


def fmt(value: float) -> str:
    return f"{value:.4g}"


def column_reason(
    drift: ColumnDrift, summary: pd.Series, limits: pd.DataFrame, level: float, confirm: int
) -> str:
    key = drift.features[0]
    low, high = limits.loc[key, "lower"], limits.loc[key, "upper"]
    text = f"{drift.column}: {describe_feature(key)} {fmt(summary[key])} outside {fmt(low)}–{fmt(high)}"
    if drift.kind == "recipe":
        text += " (recipe change: every reference batch follows the same profile)"
    elif drift.kind == "confirmed":
        text += (
            f" in this batch and the {confirm - 1} before it, on the same side "
            f"(t-limits at {level:g} per batch over all features)"
        )
    else:
        text += " in this batch only: an excursion, drift only if the next batch confirms it"
    others = [describe_feature(k) for k in drift.features[1:4]]
    return text + (f"; also {', '.join(others)}" if others else "")


def window_reason(
    scores: dict[str, float], share: float, batches: list[str], p_value: float, drift_share: float
) -> str:
    drifted = [k for k, p in scores.items() if p <= p_value]
    counts = pd.Series([feature_column(k) for k in drifted]).value_counts()
    top = ", ".join(f"{c} ({n})" for c, n in counts.head(4).items())
    return (
        f"window of {len(batches)} batches ({batches[0]}–{batches[-1]}): {share:.0%} of summary "
        f"features drifted (≥{drift_share:.0%}), most in {top} "
        f"(Evidently {WINDOW_METHOD} per feature, p≤{p_value:g})"
    )


def missing_reasons(summary: pd.Series, columns: list[str]) -> list[str]:
    """Columns of the new batch whose features could not be computed (no usable readings)."""
    reasons = []
    for column in columns:
        own = summary[[feature_column(k) == column for k in summary.index]]
        if own.isna().all():
            reasons.append(f"{column}: no usable readings in this batch; not tested")
    return reasons


def window_frames(new: pd.DataFrame, window: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The recent batches, without the new batch if the caller included it, then the new one."""
    new_id = batch_id_of(new)
    return [f for f in window if batch_id_of(f) != new_id] + [new]


@dataclass(frozen=True)
class Options:
    p_value: float
    drift_share: float
    limit_level: float
    min_reference: int
    tolerance: float
    confirm: int
    ranges: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class LimitCheck:
    summary: pd.Series  # the new batch's summary features
    limits: pd.DataFrame
    drifts: list[ColumnDrift]


def duration_h(frames: list[pd.DataFrame]) -> float:
    return float(np.median([f[TIME].max() - f[TIME].min() for f in frames]))


def check_limits(
    win_table: pd.DataFrame,
    ref_frames: list[pd.DataFrame],
    ref_table: pd.DataFrame,
    fs: FeatureSpec,
    opt: Options,
) -> LimitCheck:
    """The new batch (last row of `win_table`) and the batches before it against the limits."""
    columns = list(dict.fromkeys([*fs.online, *fs.cumulative, *fs.integrated, *fs.offline]))
    scales = channel_scales(ref_frames, columns, opt.ranges)
    resolution = feature_resolution(ref_table, scales, duration_h(ref_frames), opt.tolerance)
    limits = prediction_limits(ref_table, resolution, opt.limit_level, outcome_features(fs))
    ratios = [exceedance(row, limits) for _, row in win_table.iterrows()]
    recipe, confirmed = judge_features(ratios[-1], ratios[:-1], limits["recipe"], opt.confirm)
    drifts = column_drifts(ratios[-1], recipe, confirmed, columns)
    return LimitCheck(win_table.iloc[-1], limits, drifts)


def verdict_reasons(
    check: LimitCheck, scores: EvidentlyScores, batches: list[str], opt: Options, counted: int
) -> tuple[float, list[str]]:
    """The window's drift share and the plain-words reasons: warm-up, drift, excursions, then
    untested columns."""
    window = scores.window
    share = float(np.mean([p <= opt.p_value for p in window.values()])) if window else 0.0
    reasons = []
    if counted < opt.min_reference:
        reasons.append(
            f"warming up: {counted} reference batches, drift alarms count from "
            f"{opt.min_reference}; what follows is shown, not acted on"
        )
    beyond = sorted((d for d in check.drifts if d.kind), key=lambda d: (not d.drifted, -d.score))
    reasons += [
        column_reason(d, check.summary, check.limits, opt.limit_level, opt.confirm) for d in beyond
    ]
    if share >= opt.drift_share:
        reasons.append(window_reason(window, share, batches, opt.p_value, opt.drift_share))
    reasons += missing_reasons(check.summary, [d.column for d in check.drifts])
    return share, reasons


def split_reference(
    new: pd.DataFrame, window: list[pd.DataFrame], reference: list[pd.DataFrame], confirm: int
) -> tuple[list[pd.DataFrame], list[pd.DataFrame], list[pd.DataFrame]]:
    """(window: batches before `new` then `new`; reference without `new`; the reference the
    limits come from: also without the batches that confirm `new`, unless too few remain)."""
    frames = window_frames(new, window)
    counted = [f for f in reference if batch_id_of(f) != batch_id_of(new)]
    under_test = {batch_id_of(f) for f in frames[-confirm:]}
    clean = [f for f in counted if batch_id_of(f) not in under_test]
    return frames, counted, clean if len(clean) >= 2 else counted


def check_data_drift(
    new: pd.DataFrame,
    window: list[pd.DataFrame],
    reference: list[pd.DataFrame],
    fs: FeatureSpec,
    p_value: float = DEFAULTS.drift_p_value,
    drift_share: float = DEFAULTS.drift_share,
    report_html: Path | None = None,
    *,
    limit_level: float = DEFAULTS.drift_limit_level,
    min_reference: int = DEFAULTS.drift_min_reference,
    tolerance: float = DEFAULTS.drift_tolerance,
    confirm: int = DEFAULTS.drift_confirm_batches,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> DataDriftResult:
    """Data drift of `new` (see the module docstring and `Thresholds` for the levels).

    `window`: the recent accepted batches before it, oldest first (the last `confirm - 1`
    confirm a change); `reference`: the champion's batches (train and held-out), or the
    accepted batches before `new` while there is no champion; `ranges`: the spec's plausible
    ranges by channel (`drift_limits.spec_ranges`), the scale of channels flat in the reference. The new
    batch is left out of `window` and `reference` if there."""
    opt = Options(
        p_value, drift_share, limit_level, min_reference, tolerance, confirm, ranges or {}
    )
    new_id = batch_id_of(new)
    frames, counted, ref_frames = split_reference(new, window, reference, confirm)
    if len(ref_frames) < 2:
        return warming_up_result(new_id, len(counted), min_reference, frames)
    ref_table, win_table = summary_table(ref_frames, fs), summary_table(frames, fs)
    check = check_limits(win_table, ref_frames, ref_table, fs, opt)
    from monitoring.drift_report import evidently_scores, sensor_rows

    rows = sensor_rows(ref_frames, list(fs.online)), sensor_rows([new], list(fs.online), seed=1)
    scores = evidently_scores(ref_table, win_table, *rows, p_value)
    batches = [str(b) for b in win_table.index]
    share, reasons = verdict_reasons(check, scores, batches, opt, len(counted))
    warming = len(counted) < min_reference
    drifted = not warming and (any(d.drifted for d in check.drifts) or share >= drift_share)
    log.info("%s: drifted=%s window share=%.2f; %s", new_id, drifted, share, "; ".join(reasons))
    result = DataDriftResult(
        batch_id=new_id, drifted=drifted, warming_up=warming, reference_batches=len(counted),
        drift_share=share, columns=check.drifts, reasons=reasons, window_batches=batches,
        feature_scores=scores.window, row_level=scores.rows,
    )  # fmt: skip
    if report_html is not None:
        save_report(check, scores, opt, report_html)
    return result


def save_report(check: LimitCheck, scores: EvidentlyScores, opt: Options, html: Path) -> Path:
    """The Evidently HTML of this check, led by the columns beyond their limits, worst first."""
    from monitoring.drift_report import save_batch_report

    beyond = [d for d in sorted(check.drifts, key=lambda d: -d.score) if d.features]
    flagged = [k for d in beyond for k in d.features]
    return save_batch_report(scores, flagged, [d.column for d in beyond], opt, html)


def warming_up_result(
    new_id: str, counted: int, min_reference: int, frames: list[pd.DataFrame]
) -> DataDriftResult:
    """Too few reference batches to compute any limits: nothing tested, nothing flagged."""
    return DataDriftResult(
        batch_id=new_id, drifted=False, warming_up=True, reference_batches=counted,
        drift_share=0.0, columns=[], window_batches=[batch_id_of(f) for f in frames],
        reasons=[f"warming up: {counted} reference batches, drift alarms count from {min_reference}"],
        feature_scores={}, row_level={},
    )  # fmt: skip
