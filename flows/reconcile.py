"""Reconcile flow: on a schedule (prefect.yaml), finds work that was lost and finishes it."""

from __future__ import annotations

from prefect import flow

from bioprocessml.ingest.arrival import IngestResult
from tasks.ingest import announce_verdict, await_monitoring_run
from tasks.reconcile import recover_runs, settle_lost_arrivals


@flow(name="reconcile", log_prints=True)
def reconcile() -> list[IngestResult]:
    """Crashed runs are redone once; arrivals without a verdict and unannounced files are
    judged; their verdicts are announced like any other."""
    # --- flow runs whose process died ---
    recover_runs()
    # --- arrivals without a verdict, files without an arrival ---
    results = settle_lost_arrivals()
    # --- announce ---
    for result in results:
        announce_verdict(result)
        if len(results) > 1 and result.verdict == "accepted" and result.batch_id:
            await_monitoring_run(result.batch_id)  # monitoring stays in arrival order
    return results
