"""Ingest flow: started by `bioprocess.batch.arrived` (see prefect.yaml)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from bioprocessml.ingest.arrival import IngestResult
from tasks.ingest import announce_verdict, judge_and_file


@flow(name="ingest-batch", log_prints=True)
def ingest_batch(path: str, sha256: str = "", size: int = 0) -> IngestResult:
    """Judge one arrived file (path relative to the incoming folder) and announce the verdict."""
    logger = get_run_logger()
    logger.info("arrived: %s (%s bytes, sha256 %s)", path, size, sha256[:12])
    # --- validate, then accept or quarantine ---
    result = judge_and_file(path, sha256)
    # --- announce ---
    announce_verdict(result)
    return result
