"""Ingest-stage tasks: thin wrappers with retries around `bioprocessml.ingest.arrival`."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from bioprocessml.events import (
    BATCH_ACCEPTED,
    BATCH_QUARANTINED,
    AcceptedPayload,
    QuarantinedPayload,
    batch_resource,
    emit,
    safe_name,
)
from bioprocessml.ingest.arrival import IngestResult, file_arrivals
from bioprocessml.settings import Settings
from bioprocessml.spec import load_spec


@task(name="judge-and-file", retries=2, retry_delay_seconds=2)
def judge_and_file(
    payload: dict[str, Any], event_id: str = "", resource: str = ""
) -> list[IngestResult]:
    """Validate the event's payload and the file, and file it as accepted or quarantined, then
    any other arrival waiting (idempotent: safe to retry; a settled arrival is not redone)."""
    from prefect.runtime import flow_run

    settings = Settings()
    spec = load_spec(settings.spec_path)
    label = resource.removeprefix("bioprocess.batch.")
    results = file_arrivals(settings, spec, payload, event_id, label, flow_run.get_id())
    for result in results:
        get_run_logger().info("%s → %s %s", result.file, result.verdict, "; ".join(result.reasons))
    return results


@task(name="announce-verdict", retries=3, retry_delay_seconds=2)
def announce_verdict(result: IngestResult) -> str | None:
    """Emit `bioprocess.batch.accepted` or `.quarantined`; duplicates and refusals emit nothing."""
    if result.verdict == "accepted":
        assert result.batch_id and result.data_version and result.location
        payload = AcceptedPayload(
            batch_id=result.batch_id, sha256=result.sha256, data_version=result.data_version,
            path=result.location, warnings=result.warnings,
        )  # fmt: skip
        return emit(BATCH_ACCEPTED, batch_resource(result.batch_id), payload)
    if result.verdict == "quarantined":
        assert result.location
        quarantined = QuarantinedPayload(
            quarantine_id=result.location.split("/", 1)[1], file=result.file,
            sha256=result.sha256, reasons=result.reasons,
        )  # fmt: skip
        return emit(BATCH_QUARANTINED, batch_resource(safe_name(result.file)), quarantined)
    return None


MONITORING_DEPLOYMENT = "on-accepted"


@task(name="await-monitoring-run", retries=0)
def await_monitoring_run(batch_id: str, timeout: float = 30.0) -> bool:
    """Wait until the accepted batch's monitoring run exists, so the next batch's run is created
    after it: events sent milliseconds apart may start their runs in either order, and the
    monitoring queue hands out runs oldest first. False after `timeout` (logged, not fatal)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[MONITORING_DEPLOYMENT])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=50,
            )  # fmt: skip
            if any(r.parameters.get("batch_id") == batch_id for r in runs):
                return True
            time.sleep(0.5)
    get_run_logger().warning("no monitoring run for %s after %.0f s", batch_id, timeout)
    return False
