"""Data drift of one new batch, on per-batch summary features (see `monitoring.summary`).

Two tests make the verdict; a third is only reported:

- **Single batch**: each summary feature of the new batch against a prediction interval from
  the reference batches (Student t, n-1 df, sd·sqrt(1+1/n)), at levels that add up to
  `p_value` (weighted Bonferroni: see `feature_levels`), so a normal batch is flagged with
  probability ≤ `p_value` in all. A column has drifted when any of its features is beyond
  its limits.
- **Window** (Evidently): the summary features of the new batch and the recent batches before
  it against the reference batches' (K-S per feature, drifted at p ≤ `p_value`). A sustained
  change moves many features at once: the window has drifted when the share of drifted
  features reaches `drift_share`. With one row per batch, one batch alone cannot reach a small
  p-value; a window of several can. A change in a few features only (a yield change, a probe)
  is the single-batch test's job.
- **Row level** (Evidently): each online sensor's raw readings of the new batch against
  subsampled reference readings. Rows within a batch are autocorrelated, so this flags most
  normal batches: a diagnostic for the report, never part of the verdict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel
from scipy import stats

from bioprocessml.dataset import BATCH_ID
from models.features import FeatureSpec
from monitoring.summary import describe_feature, feature_column, outcome_features, summary_table

log = logging.getLogger(__name__)

ROW_SAMPLE = 2000  # raw rows per side in the row-level test
SD_FLOOR = 1e-9  # relative: a feature constant in the reference still gets finite limits
WINDOW_METHOD = "K-S"
# Share of the single-batch error budget for the few outcome features (cumulative feed,
# integrated off-gas, harvest assays: see `summary.outcome_features`). They sum up what the
# whole batch consumed and made, and hold the soft sensor's inputs and target, so a change that
# matters for the model shows there. A raw-material lot with 20 % lower yield moves each by only
# ~4-5 batch-to-batch sd: an even split over ~80 features (t≈4.8 at 20 reference batches)
# mostly misses it, this split (t≈3.9) mostly catches it.
PRIORITY_SHARE = 0.5


class ColumnDrift(BaseModel):
    column: str
    drifted: bool
    score: float  # largest |t| / t-limit over the column's features: > 1 is beyond the limits
    features: list[str]  # the column's features beyond their limits


class DataDriftResult(BaseModel):
    batch_id: str
    drifted: bool
    drift_share: float  # share of summary features drifted in the window test
    columns: list[ColumnDrift]
    reasons: list[str]
    window_batches: list[str]
    feature_scores: dict[str, float]  # Evidently K-S p-value per summary feature (window)
    row_level: dict[str, float]  # Evidently K-S p-value per online sensor on raw rows


def batch_id_of(frame: pd.DataFrame) -> str:
    return str(frame[BATCH_ID].iloc[0])


def feature_levels(features: pd.Index, priority: list[str], p_value: float) -> pd.Series:
    """Two-sided test level per feature: a weighted Bonferroni split of `p_value`.

    `PRIORITY_SHARE` of the budget goes to the priority features (the outcome features),
    the rest to all other features, evenly within each group. The levels add up to `p_value`,
    so the chance that a normal batch has any feature beyond its limits stays ≤ `p_value`."""
    first = features.isin(priority)
    share = PRIORITY_SHARE if first.any() and (~first).any() else float(first.all())
    levels = pd.Series(0.0, index=features)
    if first.any():
        levels[first] = p_value * share / first.sum()
    if (~first).any():
        levels[~first] = p_value * (1 - share) / (~first).sum()
    return levels


def prediction_limits(reference: pd.DataFrame, p_value: float, priority: list[str]) -> pd.DataFrame:
    """Per feature: mean, scale sd·sqrt(1+1/n), t quantile and the prediction limits for one new
    batch. Features with fewer than two reference values get no limits and are not tested."""
    n = reference.notna().sum()
    mean, sd = reference.mean(), reference.std(ddof=1)
    usable = (n >= 2) & sd.notna()
    n, mean, sd = n[usable], mean[usable], sd[usable]
    sd = np.maximum(sd, SD_FLOOR * mean.abs() + np.finfo(float).tiny)
    level = feature_levels(n.index, priority, p_value)
    t = pd.Series(stats.t.ppf(1 - level / 2, n - 1), index=n.index)
    scale = sd * np.sqrt(1 + 1 / n)
    return pd.DataFrame(
        {"mean": mean, "scale": scale, "t": t, "lower": mean - t * scale, "upper": mean + t * scale}
    )


def single_batch_test(
    summary: pd.Series, limits: pd.DataFrame, columns: list[str]
) -> list[ColumnDrift]:
    """One `ColumnDrift` per source column, in the feature spec's order."""
    ratio = ((summary.reindex(limits.index) - limits["mean"]).abs() / limits["scale"]) / limits["t"]
    result = []
    for column in columns:
        own = ratio[[feature_column(k) == column for k in ratio.index]].dropna()
        beyond = own[own > 1].sort_values(ascending=False)
        result.append(
            ColumnDrift(
                column=column,
                drifted=not beyond.empty,
                score=float(own.max()) if not own.empty else 0.0,
                features=list(beyond.index),
            )
        )
    return result


def fmt(value: float) -> str:
    return f"{value:.4g}"


def single_batch_reason(
    drift: ColumnDrift, summary: pd.Series, limits: pd.DataFrame, p_value: float
) -> str:
    key = drift.features[0]
    low, high = limits.loc[key, "lower"], limits.loc[key, "upper"]
    text = (
        f"{drift.column}: {describe_feature(key)} {fmt(summary[key])} outside the reference "
        f"prediction limits {fmt(low)}–{fmt(high)} (single-batch t-limits, p<{p_value:g} overall)"
    )
    others = [describe_feature(k) for k in drift.features[1:]]
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


def sensor_rows(frames: list[pd.DataFrame], sensors: list[str], seed: int = 0) -> pd.DataFrame:
    """Raw online readings, pooled and subsampled to at most `ROW_SAMPLE` rows."""
    rows = pd.concat([f.reindex(columns=sensors) for f in frames], ignore_index=True)
    rows = rows.astype(float).dropna(how="all")
    if len(rows) > ROW_SAMPLE:
        rows = rows.sample(ROW_SAMPLE, random_state=seed)
    return rows


def window_frames(new: pd.DataFrame, window: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The recent batches, without the new batch if the caller included it, then the new one."""
    new_id = batch_id_of(new)
    return [f for f in window if batch_id_of(f) != new_id] + [new]


def testable(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Summary features Evidently can score: values on both sides."""
    ok = (reference.notna().sum() >= 2) & (current.notna().sum() >= 1)
    return list(ok[ok].index)


@dataclass(frozen=True)
class EvidentlyScores:
    window: dict[str, float]  # summary feature → p-value, window vs reference batches
    rows: dict[str, float]  # online sensor → p-value, new batch rows vs reference rows
    reference: pd.DataFrame  # the stacked frames the report ran on (for the HTML)
    current: pd.DataFrame


def evidently_scores(
    ref_table: pd.DataFrame,
    win_table: pd.DataFrame,
    ref_rows: pd.DataFrame,
    new_rows: pd.DataFrame,
    p_value: float,
) -> EvidentlyScores:
    """Window feature scores and row-level sensor scores, from one Evidently report."""
    from monitoring.drift_report import drift_scores, stacked

    features = testable(ref_table, win_table)
    sensors = [c for c in new_rows if new_rows[c].notna().any() and ref_rows[c].notna().any()]
    reference = stacked([ref_table[features], ref_rows[sensors]])
    current = stacked([win_table[features], new_rows[sensors]])
    scores = drift_scores(reference, current, p_value) if len(current.columns) else {}
    finite = {k: v for k, v in scores.items() if np.isfinite(v)}
    return EvidentlyScores(
        window={k: finite[k] for k in features if k in finite},
        rows={k: finite[k] for k in sensors if k in finite},
        reference=reference,
        current=current,
    )


def save_report(
    scores: EvidentlyScores, result: DataDriftResult, p_value: float, drift_share: float, html: Path
) -> Path:
    """Evidently HTML: plots for the features beyond their single-batch limits, the window's
    drifted features (smallest p first) and the row-level sensors; scores for the rest."""
    from monitoring.drift_report import save_drift_report

    flagged = [k for c in result.columns for k in c.features]
    drifted = sorted(
        (k for k, p in scores.window.items() if p <= p_value), key=scores.window.__getitem__
    )
    plotted = list(dict.fromkeys([*flagged, *drifted, *scores.rows]))
    return save_drift_report(
        scores.reference, scores.current, p_value, html, plotted, list(scores.window), drift_share
    )


def verdict_reasons(
    drifts: list[ColumnDrift],
    summary: pd.Series,
    limits: pd.DataFrame,
    scores: EvidentlyScores,
    batches: list[str],
    p_value: float,
    drift_share: float,
) -> tuple[float, list[str]]:
    """The window's drift share and the plain-words reasons (drift first, then untested columns)."""
    window = scores.window
    share = float(np.mean([p <= p_value for p in window.values()])) if window else 0.0
    reasons = [single_batch_reason(d, summary, limits, p_value) for d in drifts if d.drifted]
    if share >= drift_share:
        reasons.append(window_reason(window, share, batches, p_value, drift_share))
    reasons += missing_reasons(summary, [d.column for d in drifts])
    return share, reasons


def check_data_drift(
    new: pd.DataFrame,
    window: list[pd.DataFrame],
    reference: list[pd.DataFrame],
    fs: FeatureSpec,
    p_value: float = 0.01,
    drift_share: float = 0.3,
    report_html: Path | None = None,
) -> DataDriftResult:
    """Data drift of `new` (see the module docstring). `window`: the recent accepted batches
    before it; the new batch is added to it, and left out of `window`/`reference` if there."""
    new_id = batch_id_of(new)
    reference = [f for f in reference if batch_id_of(f) != new_id]
    if len(reference) < 2:
        raise ValueError(f"{new_id}: need at least 2 reference batches, got {len(reference)}")
    ref_table = summary_table(reference, fs)
    win_table = summary_table(window_frames(new, window), fs)
    summary = win_table.loc[new_id]
    limits = prediction_limits(ref_table, p_value, outcome_features(fs))
    columns = list(dict.fromkeys([*fs.online, *fs.cumulative, *fs.integrated, *fs.offline]))
    drifts = single_batch_test(summary, limits, columns)
    sensors = list(fs.online)
    rows = sensor_rows(reference, sensors), sensor_rows([new], sensors, seed=1)
    scores = evidently_scores(ref_table, win_table, *rows, p_value)
    batches = [str(b) for b in win_table.index]
    share, reasons = verdict_reasons(drifts, summary, limits, scores, batches, p_value, drift_share)
    drifted = any(d.drifted for d in drifts) or share >= drift_share
    log.info("%s: drifted=%s window share=%.2f; %s", new_id, drifted, share, "; ".join(reasons))
    result = DataDriftResult(
        batch_id=new_id, drifted=drifted, drift_share=share, columns=drifts, reasons=reasons,
        window_batches=batches, feature_scores=scores.window, row_level=scores.rows,
    )  # fmt: skip
    if report_html is not None:
        save_report(scores, result, p_value, drift_share, report_html)
    return result
