"""Evidently (0.7 API) drift scores and the HTML report. Importing this module imports
Evidently (~8 s): import it inside the functions that need it.

Scores come from Evidently's registered stat tests (K-S p-values by default). Its `ValueDrift`
metric draws two plotly figures per column while it calculates (~65 ms a column, ~5 s for a
window check), so the numbers come from `PlainValueDrift`, the same test without figures
(~2 ms a column). The HTML report plots only the columns worth a look (`ValueDrift`) and
lists the scores of the others.

Summary features (one row per batch) and raw sensor rows go into one Report: both are stacked
in one frame, each column NaN where it does not apply, and Evidently drops NaN per column.
"""

from __future__ import annotations

from pathlib import Path

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
from evidently.metrics import DriftedColumnsCount, ValueDrift

METHOD = "ks"


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
        reference = reference_data.as_dataframe()[column].dropna()
        current = current_data.as_dataframe()[column].dropna()
        test = get_stattest(reference, current, ColumnType.Numerical, self.metric.method)
        result = test(reference, current, ColumnType.Numerical, self.metric.threshold)
        return self.result(float(result.drift_score))

    def display_name(self) -> str:
        return f"{self.metric.method} drift score of {self.metric.column}"


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
    metrics: list[object] = [
        PlainValueDrift(column=c, method=METHOD, threshold=p_value) for c in current.columns
    ]
    return {
        m["config"]["column"]: float(m["value"])
        for m in run_report(reference, current, metrics).dict()["metrics"]
        if m["config"]["type"].endswith("ValueDrift")
    }


def save_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    p_value: float,
    html: Path,
    plotted: list[str],
    share_columns: list[str],
    drift_share: float,
) -> Path:
    """The HTML report: the share of drifted columns among `share_columns`, Evidently's drift
    plots for the `plotted` columns (in that order), then every other column's score."""
    rest = [c for c in current.columns if c not in plotted]
    metrics: list[object] = [
        DriftedColumnsCount(
            columns=share_columns, method=METHOD, threshold=p_value, drift_share=drift_share
        ),
        *[ValueDrift(column=c, method=METHOD, threshold=p_value) for c in plotted],
        *[PlainValueDrift(column=c, method=METHOD, threshold=p_value) for c in rest],
    ]
    html.parent.mkdir(parents=True, exist_ok=True)
    run_report(reference, current, metrics).save_html(str(html))
    return html
