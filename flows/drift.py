"""Drift flow: started by `bioprocess.batch.accepted` (see prefect.yaml)."""

from __future__ import annotations

from prefect import flow

from bioprocessml.settings import Settings
from monitoring.history import DriftRecord, record_path
from tasks.drift import check_batch, log_monitoring_run, request_retrain


@flow(name="drift-check", log_prints=True)
def check_drift(batch_id: str, data_version: str = "") -> DriftRecord:
    """Data and concept drift of one accepted batch; ask for retraining when needed."""
    # --- data drift and concept drift ---
    record = check_batch(batch_id)
    # --- decide: retrain request (bounded by pending runs and cool-down) ---
    request_retrain(record, data_version)
    # --- report ---
    log_monitoring_run(record, record_path(Settings().reports_dir, batch_id))
    return record
