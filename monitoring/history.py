"""Per-batch monitoring records: one JSON file per checked batch, next to its HTML report.

The CUSUM state and the retrain cool-down are derived from these records, so there is no
second copy of state to drift out of step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from models.base import Task
from monitoring.usefulness import LiveScore

MONITORING_EXPERIMENT = "bioprocessml-monitoring"  # MLflow: one run per checked batch


class DriftRecord(BaseModel):
    batch_id: str
    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    champion_version: str | None = None
    data_drift: bool = False
    drift_share: float = 0.0
    drifted_columns: list[str] = []
    batch_rmse: float | None = None
    naive_rmse: float | None = None
    error_ratio: float | None = None
    coverage: float | None = None  # share of the batch's assays inside the champion's 95 % band
    coverage_points: int = 0
    cusum: float = 0.0
    concept_alarm: bool = False
    live: list[LiveScore] = []
    worse_than_naive: list[Task] = []
    requested: bool = False
    kind: str | None = None
    tasks: list[Task] = []
    deferred: list[Task] = []
    reasons: list[str] = []
    suppressed: str | None = None
    report: str | None = None
    details: dict[str, Any] = {}

    def worse_champions(self) -> dict[Task, str]:
        """Task → version of each live champion found worse than the naive forecast here: the
        retraining's gate retires it unless a candidate beats the naive forecast."""
        return {s.task: s.version for s in self.live if s.task in self.worse_than_naive}


def record_path(reports_dir: Path, batch_id: str) -> Path:
    return reports_dir / f"{batch_id}.json"


def save_record(reports_dir: Path, record: DriftRecord) -> Path:
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = record_path(reports_dir, record.batch_id)
    path.write_text(record.model_dump_json(indent=2))
    return path


def load_history(reports_dir: Path) -> list[DriftRecord]:
    """All records, oldest check first."""
    if not reports_dir.is_dir():
        return []
    records = [DriftRecord.model_validate_json(p.read_text()) for p in reports_dir.glob("*.json")]
    return sorted(records, key=lambda r: r.checked_at)
