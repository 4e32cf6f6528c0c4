"""The Evidently monitoring project: one snapshot per checked batch, a dashboard over batches.

A local Evidently workspace (`<state_dir>/evidently`, served by `evidently ui`, which reads new
snapshots as they are written) holds one project. Each checked batch adds a snapshot of what the
monitor decided on: the window's share of drifted features, the features beyond their limits,
the champion's RMSE and the naive forecast's on the batch's assays, the champion's 95 %-interval
coverage of them, the concept CUSUM and the alarms; the batch id, champion version, drifted
columns and reasons go into the snapshot's metadata and tags. The dashboard plots them over
batches (the snapshot's timestamp is the check's). Importing this module imports Evidently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import MeanValue
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel, text_panel
from evidently.ui.workspace import Project, Workspace

from bioprocessml.settings import Settings
from monitoring.history import DriftRecord

log = logging.getLogger(__name__)
PROJECT = "BioProcessML monitoring"
DESCRIPTION = "One snapshot per checked batch: data drift, champion error and coverage, alarms."
VALUES = {  # snapshot column: what it is (legend)
    "checked": "batches checked",
    "drift_share": "share of drifted features (window K-S)",
    "drifted_columns": "columns beyond their limits",
    "data_drift": "data drift alarm",
    "concept_alarm": "concept drift alarm",
    "retrain_requested": "retraining requested",
    "champion_rmse": "champion RMSE on the assays",
    "naive_rmse": "naive forecast RMSE on the assays",
    "coverage": "champion 95 % interval coverage",
    "cusum": "concept CUSUM",
}


def workspace_path(settings: Settings) -> Path:
    return settings.state_dir.resolve() / "evidently"


def _metric(column: str) -> PanelMetric:
    return PanelMetric(legend=VALUES[column], metric="MeanValue", metric_labels={"column": column})


def _panels() -> list[Any]:
    return [
        text_panel("BioProcessML: every accepted batch, as the drift monitor judged it"),
        counter_panel("Batches checked", [_metric("checked")], size="half", aggregation="sum"),
        counter_panel("Data drift alarms", [_metric("data_drift")], size="half", aggregation="sum"),
        line_plot_panel(
            "Data drift", [_metric("drift_share"), _metric("drifted_columns")], size="half"
        ),
        line_plot_panel(
            "Champion error on the batch's titer assays",
            [_metric("champion_rmse"), _metric("naive_rmse")],
            size="half",
        ),
        line_plot_panel("Interval coverage (target 0.95)", [_metric("coverage")], size="half"),
        line_plot_panel("Concept drift CUSUM", [_metric("cusum")], size="half"),
        bar_plot_panel(
            "Alarms per batch",
            [_metric("data_drift"), _metric("concept_alarm"), _metric("retrain_requested")],
            stacked=True,
        ),
    ]


def open_project(settings: Settings) -> tuple[Workspace, Project]:
    """The workspace's project, created with its dashboard on first use."""
    path = workspace_path(settings)
    path.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(str(path))
    found = workspace.search_project(PROJECT)
    if found:
        return workspace, found[0]
    project = workspace.create_project(PROJECT, description=DESCRIPTION)
    for panel in _panels():
        project.dashboard.add_panel(panel)
    return workspace, project


def record_values(record: DriftRecord) -> dict[str, float]:
    """The numbers of one check (those it has: no champion, no error or coverage)."""
    values: dict[str, float | None] = {
        "checked": 1.0,
        "drift_share": record.drift_share,
        "drifted_columns": float(len(record.drifted_columns)),
        "data_drift": float(record.data_drift),
        "concept_alarm": float(record.concept_alarm),
        "retrain_requested": float(record.requested),
        "champion_rmse": record.batch_rmse,
        "naive_rmse": record.naive_rmse,
        "coverage": record.coverage,
        "cusum": record.cusum,
    }
    return {k: float(v) for k, v in values.items() if v is not None and v == v}


def batch_snapshot(record: DriftRecord) -> Any:
    values = record_values(record)
    frame = pd.DataFrame([values])
    data = Dataset.from_pandas(
        frame, data_definition=DataDefinition(numerical_columns=list(values))
    )
    tags = ["batch"] + [
        t
        for t, on in (
            ("data-drift", record.data_drift),
            ("concept-alarm", record.concept_alarm),
            ("retrain-requested", record.requested),
        )
        if on
    ]
    metadata = {
        "batch_id": record.batch_id,
        "champion_version": str(record.champion_version),
        "drifted_columns": ", ".join(record.drifted_columns)[:500],
        "reasons": "; ".join(record.reasons)[:1000],
    }
    report = Report([MeanValue(column=c) for c in values], tags=tags, metadata=metadata)
    return report.run(data, None, timestamp=record.checked_at.replace(tzinfo=None))


def add_batch_snapshot(settings: Settings, record: DriftRecord) -> str:
    """Add the batch's snapshot to the project; returns its id."""
    workspace, project = open_project(settings)
    ref = workspace.add_run(project.id, batch_snapshot(record), name=f"batch {record.batch_id}")
    log.info("Evidently snapshot %s for batch %s", ref.id, record.batch_id)
    return str(ref.id)


def snapshot_batches(settings: Settings) -> list[str]:
    """Batch ids of the project's snapshots (for tests and the CLI)."""
    workspace, project = open_project(settings)
    out = []
    for snapshot_id in workspace.list_runs(project.id):
        model = workspace.get_run(project.id, snapshot_id)
        if model is not None:
            out.append(str(model.metadata.get("batch_id")))
    return out
