"""Per-batch monitoring flow: started by `bioprocess.batch.accepted` (see prefect.yaml)."""

from __future__ import annotations

from prefect import flow

from bioprocessml.settings import Settings
from monitoring.history import DriftRecord, record_path
from tasks.drift import check_batch, log_monitoring_run, request_retrain
from tasks.rollout import score_batch


@flow(name="drift-check", log_prints=True)
def check_drift(batch_id: str, data_version: str = "") -> DriftRecord:
    """Data and concept drift of one accepted batch; ask for retraining when needed; score the
    live rollout's challenger on it (its offline titer judges both models' logged answers)."""
    # --- data drift and concept drift ---
    record = check_batch(batch_id)
    # --- decide: retrain request (bounded by pending runs and cool-down) ---
    request_retrain(record, data_version)
    # --- rollout: paired errors of champion and challenger on this finished batch ---
    score_batch(batch_id)
    # --- report ---
    log_monitoring_run(record, record_path(Settings().reports_dir, batch_id))
    return record
