"""Reconcile tasks: runs whose process died, and arrivals that never got a verdict."""

from __future__ import annotations

from prefect import get_run_logger, task

from bioprocessml.ingest.arrival import IngestResult
from bioprocessml.ingest.reconcile import settle_arrivals
from bioprocessml.settings import Settings
from bioprocessml.spec import load_spec
from bioprocessml.stack.recovery import Recovered, recover_orphans
from bioprocessml.stack.servers import WORK_POOL

ARRIVAL_DEPLOYMENT = "on-arrival"


@task(name="recover-crashed-runs", retries=1, retry_delay_seconds=5)
def recover_runs() -> list[Recovered]:
    """Runs left Running by a dead runner or worker: marked crashed and redone once."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return recover_orphans(client, WORK_POOL)


def arrivals_in_flight() -> set[str]:
    """Event ids of arrival runs that are scheduled, pending or running: those are not lost."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    live = [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[ARRIVAL_DEPLOYMENT])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=live))),
        )  # fmt: skip
    return {str(r.parameters.get("event_id")) for r in runs if r.parameters.get("event_id")}


@task(name="settle-arrivals", retries=1, retry_delay_seconds=5)
def settle_lost_arrivals() -> list[IngestResult]:
    settings = Settings()
    grace = settings.runtime.reconcile_grace_seconds
    results = settle_arrivals(settings, load_spec(settings.spec_path), arrivals_in_flight(), grace)
    for result in results:
        get_run_logger().warning(
            "reconciled %s → %s %s", result.file, result.verdict, result.reasons
        )
    return results
