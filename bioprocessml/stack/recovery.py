"""Flow runs whose process died: marked crashed, their work redone once.

A runner or worker killed with SIGKILL cannot report anything, so its runs stay Running in
Prefect forever. Each run records the process that executes it (`infrastructure_pid`,
`host:pid[:start time]`); a run whose process no longer exists on this host is an orphan.
"""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psutil
from pydantic import BaseModel

from bioprocessml.stack.processes import start_of, still_running

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun

log = logging.getLogger(__name__)
REDO_TAG = "redo"
UNCLAIMED_PENDING = timedelta(minutes=2)  # pending without a process this long: orphaned


class Recovered(BaseModel):
    flow_run_id: str
    name: str
    owner: str | None
    redo_id: str | None


def process_mark(pid: int | None = None) -> str:
    """`host:pid:start` of a process (default: this one), for `infrastructure_pid`."""
    proc = psutil.Process(pid)
    return f"{socket.gethostname()}:{proc.pid}:{start_of(proc)}"


def owner_alive(mark: str | None) -> bool:
    """Is the process a run names as its executor still the same, live process? Runs executed
    on another host are assumed alive (we cannot see them)."""
    if not mark:
        return False
    host, _, rest = mark.partition(":")
    if host != socket.gethostname():
        return True
    pid_text, _, started = rest.partition(":")
    return pid_text.isdigit() and still_running(int(pid_text), started or None)


def orphaned_runs(client: SyncPrefectClient, pool: str) -> list[FlowRun]:
    """Running or pending runs of the pool's deployments whose process is gone."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        WorkPoolFilter,
        WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    active = [StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))),
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        limit=200,
    )  # fmt: skip
    now = datetime.now(UTC)
    found = []
    for run in runs:
        if owner_alive(run.infrastructure_pid):
            continue
        since = run.state.timestamp if run.state is not None else now
        if run.infrastructure_pid is None and now - since < UNCLAIMED_PENDING:
            continue  # a worker may be starting it right now
        found.append(run)
    return found


def recover_orphans(client: SyncPrefectClient, pool: str) -> list[Recovered]:
    """Mark each orphaned run Crashed and, unless it is itself a redo, start it again once."""
    from prefect.states import Crashed

    recovered = []
    for run in orphaned_runs(client, pool):
        owner = run.infrastructure_pid
        message = f"its process {owner or '(never started)'} died; marked crashed on recovery"
        result: Any = client.set_flow_run_state(run.id, Crashed(message=message))
        if str(result.status.value).upper() != "ACCEPT":
            continue  # someone else recovered it first
        redo = None
        if REDO_TAG not in run.tags and run.deployment_id is not None:
            tags = [*run.tags, REDO_TAG, f"redo-of:{run.id}"]
            redo = client.create_flow_run_from_deployment(
                run.deployment_id, parameters=run.parameters, tags=tags
            ).id
        log.warning("flow run %s (%s): %s; redo: %s", run.name, run.id, message, redo)
        recovered.append(Recovered(
            flow_run_id=str(run.id), name=run.name, owner=owner,
            redo_id=str(redo) if redo else None,
        ))  # fmt: skip
    return recovered
