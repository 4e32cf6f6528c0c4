"""Evidently (0.7 API) drift scores and the HTML report. Importing this module imports
Evidently (~8 s): import it inside the functions that need it.

Scores come from Evidently's registered stat tests (K-S p-values by default), called directly
per column (~1 ms a column): a `Report` around them costs ~5 ms a column in dataset statistics,
and its `ValueDrift` metric draws two plotly figures per column (~65 ms). The HTML report is a
`Report` over the columns that matter only: plots (`ValueDrift`) for the few worth a look and
score lines (`PlainValueDrift`, the same test without figures) for a short list more; with
~250 columns a full report took ~9 s, this one ~1 s.

Summary features (one row per batch) and raw sensor rows go into one frame: both are stacked,
each column NaN where it does not apply, and NaN is dropped per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.metric_types import (
    ColumnMetric,
    SingleValue,
    SingleValueCalculation,
    SingleValueMetric,
)
from evidently.core.report import Snapshot
from evidently.legacy.calculations.stattests import get_stattest
from evidently.legacy.core import ColumnType
from evidently.metrics import ValueDrift

METHOD = "ks"
ROW_SAMPLE = 2000  # raw rows per side in the row-level test


class ReportOptions(Protocol):
    @property
    def p_value(self) -> float: ...


class PlainValueDrift(ColumnMetric, SingleValueMetric):
    """`ValueDrift`'s score (a registered Evidently stat test on one numerical column),
    without its figures."""

    method: str = METHOD
    threshold: float = 0.05


class PlainValueDriftCalculation(SingleValueCalculation[PlainValueDrift]):
    def calculate(
        self, context: object, current_data: Dataset, reference_data: Dataset | None
    ) -> SingleValue:
        if reference_data is None:
            raise ValueError("reference data is required for a drift score")
        column = self.metric.column
        reference = reference_data.as_dataframe()[column]
        current = current_data.as_dataframe()[column]
        return self.result(
            column_score(reference, current, self.metric.method, self.metric.threshold)
        )

    def display_name(self) -> str:
        return f"{self.metric.method} drift score of {self.metric.column}"


def column_score(reference: pd.Series, current: pd.Series, method: str, threshold: float) -> float:
    """Evidently's registered stat test `method` on one numerical column, NaN dropped."""
    reference, current = reference.dropna(), current.dropna()
    test = get_stattest(reference, current, ColumnType.Numerical, method)
    return float(test(reference, current, ColumnType.Numerical, threshold).drift_score)


def stacked(parts: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([p.reset_index(drop=True) for p in parts], ignore_index=True).astype(float)


def run_report(reference: pd.DataFrame, current: pd.DataFrame, metrics: list[object]) -> Snapshot:
    definition = DataDefinition(numerical_columns=list(current.columns))
    return Report(metrics).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def drift_scores(
    reference: pd.DataFrame, current: pd.DataFrame, p_value: float
) -> dict[str, float]:
    """Evidently drift score (a p-value for K-S) of every column of `current` against
    `reference`."""
    return {c: column_score(reference[c], current[c], METHOD, p_value) for c in current.columns}


def save_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    p_value: float,
    html: Path,
    plotted: list[str],
    listed: list[str],
) -> Path:
    """The HTML report on `plotted` and `listed` columns only: Evidently's drift plots for the
    `plotted` ones (in that order), then the scores of the `listed` ones."""
    listed = [c for c in dict.fromkeys(listed) if c not in plotted]
    columns = [*plotted, *listed]
    metrics: list[object] = [
        *[ValueDrift(column=c, method=METHOD, threshold=p_value) for c in plotted],
        *[PlainValueDrift(column=c, method=METHOD, threshold=p_value) for c in listed],
    ]
    html.parent.mkdir(parents=True, exist_ok=True)
    run_report(reference[columns], current[columns], metrics).save_html(str(html))
    return html


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


MAX_PLOTS = 12  # Evidently draws each plotted column (~65 ms)
MAX_LISTED = 40  # score lines: the lowest window p-values and the row-level sensors


def save_batch_report(
    scores: EvidentlyScores,
    flagged: list[str],
    columns: list[str],
    opt: ReportOptions,
    html: Path,
) -> Path:
    """Evidently HTML of one drift check: plots for the summary features beyond their limits
    (`flagged`, worst first), the raw readings of the flagged `columns` and the window's drifted
    features (smallest p first), at most `MAX_PLOTS`; then score lines for the other flagged
    features, the lowest window p-values and the row-level sensors."""
    by_p = sorted(scores.window, key=scores.window.__getitem__)
    drifted = [k for k in by_p if scores.window[k] <= opt.p_value]
    rows = [c for c in columns if c in scores.rows]
    plotted = list(dict.fromkeys([*flagged[: MAX_PLOTS // 2], *rows[:3], *drifted]))[:MAX_PLOTS]
    listed = [*flagged, *by_p[:MAX_LISTED], *scores.rows][: MAX_LISTED + len(scores.rows)]
    return save_drift_report(scores.reference, scores.current, opt.p_value, html, plotted, listed)


def sensor_rows(frames: list[pd.DataFrame], sensors: list[str], seed: int = 0) -> pd.DataFrame:
    """Raw online readings, pooled and subsampled to at most `ROW_SAMPLE` rows."""
    rows = pd.concat([f.reindex(columns=sensors) for f in frames], ignore_index=True)
    rows = rows.astype(float).dropna(how="all")
    if len(rows) > ROW_SAMPLE:
        rows = rows.sample(ROW_SAMPLE, random_state=seed)
    return rows
