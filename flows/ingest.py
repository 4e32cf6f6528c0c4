"""Ingest flow: started by `bioprocess.batch.arrived` (see prefect.yaml)."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from bioprocessml.ingest.arrival import IngestResult
from tasks.ingest import announce_verdict, await_monitoring_run, judge_and_file


@flow(name="ingest-batch", log_prints=True)
def ingest_batch(
    payload: dict[str, Any] | None = None, event_id: str = "", resource: str = ""
) -> list[IngestResult]:
    """Judge the arrived file (and any other arrival waiting) and announce the verdicts. The
    trigger hands over the event's payload as it came; the flow validates it (a malformed one
    is refused, on record)."""
    logger = get_run_logger()
    logger.info("arrival event %s (%s): %s", event_id, resource, payload)
    # --- validate the payload, then the files: accept or quarantine ---
    results = judge_and_file(payload or {}, event_id, resource)
    # --- announce, in the order judged ---
    for result in results:
        announce_verdict(result)
        if len(results) > 1 and result.verdict == "accepted" and result.batch_id:
            await_monitoring_run(result.batch_id)  # monitoring stays in arrival order
    return results
