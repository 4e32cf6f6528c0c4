"""The flow runner: one long-lived process that executes the chain's flow runs in threads.

A Prefect process worker (or `flow.serve`) starts a new Python process for every flow run, which
pays the imports of Prefect, GX, Evidently, MLflow and torch again (~19 s). This runner polls
the same work pool as that worker would, claims runs the way a worker does (Pending, then its
own mark as `infrastructure_pid`) and runs each flow in process with Prefect's engine, so each
import is paid once. The server keeps enforcing the pool's queue limits: the `monitoring` queue
(limit 1) still hands out one batch at a time, oldest first. A process worker can poll the same
pool for scale-out; the deployments do not change.

Flows are loaded from the deployments' entrypoints (as a worker does), so this module imports no
flow. A run whose process died is recovered at start (`recovery.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from bioprocessml.stack.recovery import process_mark, recover_orphans

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.flows import Flow

log = logging.getLogger(__name__)


class FlowRunner:
    """Claims scheduled runs of one work pool and runs them in up to `limit` threads."""

    def __init__(self, pool: str, limit: int = 4, poll_seconds: float = 1.0) -> None:
        self.pool, self.limit, self.poll_seconds = pool, limit, poll_seconds
        self.mark = process_mark()
        self.executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="flow-run")
        self.running: dict[UUID, Future[None]] = {}
        self.flows: dict[UUID, Flow[Any, Any]] = {}
        self._lock = threading.Lock()

    def serve(self, stop: threading.Event) -> None:
        """Recover orphaned runs, then claim and run until `stop` is set. A server that is
        away (restarting, overloaded) is waited for, never fatal."""
        from prefect.client.orchestration import get_client

        ready = False
        with get_client(sync_client=True) as client:
            while not stop.is_set():
                try:
                    if not ready:
                        found = recover_orphans(client, self.pool)
                        log.info("runner %s: recovered %d orphaned runs", self.mark, len(found))
                        self.load_flows(client)
                        ready = True
                    self.claim(client)
                except Exception as exc:  # the API is down or busy: try again next poll
                    log.warning(
                        "polling %s failed (%s: %s); retrying", self.pool, type(exc).__name__, exc
                    )
                    stop.wait(max(self.poll_seconds, 2.0))
                stop.wait(self.poll_seconds)
        self.executor.shutdown(wait=False, cancel_futures=True)

    def load_flows(self, client: SyncPrefectClient) -> None:
        """Load every deployment's flow of the pool now, so the first runs do not pay it."""
        from prefect.client.schemas.filters import WorkPoolFilter, WorkPoolFilterName

        pool = WorkPoolFilter(name=WorkPoolFilterName(any_=[self.pool]))
        for deployment in client.read_deployments(work_pool_filter=pool):
            try:
                self.flow_of(client, deployment.id, deployment.entrypoint)
            except Exception:
                log.exception("cannot load the flow of deployment %s", deployment.name)

    def free_slots(self) -> int:
        with self._lock:
            for run_id in [i for i, f in self.running.items() if f.done()]:
                del self.running[run_id]
            return self.limit - len(self.running)

    def claim(self, client: SyncPrefectClient) -> None:
        if self.free_slots() <= 0:
            return
        soon = datetime.now(UTC) + timedelta(seconds=1)
        offered = client.get_scheduled_flow_runs_for_work_pool(self.pool, scheduled_before=soon)
        runs = sorted(
            (o.flow_run for o in offered),
            key=lambda r: (r.next_scheduled_start_time or r.expected_start_time or soon, r.created or soon),
        )  # fmt: skip
        for run in runs:
            if self.free_slots() <= 0:
                return
            if run.id in self.running or not self.take(client, run):
                continue
            future = self.executor.submit(self.execute, run)
            with self._lock:
                self.running[run.id] = future

    def take(self, client: SyncPrefectClient, run: FlowRun) -> bool:
        """Move the run to Pending as a worker does; False if the server says no (another
        worker took it, or a deployment concurrency slot is not free)."""
        from prefect.exceptions import Abort
        from prefect.states import Pending
        from prefect.utilities.engine import propose_state_sync

        try:
            state = propose_state_sync(client, Pending(), flow_run_id=run.id)
        except Abort:
            return False
        if not state.is_pending():
            return False
        client.update_flow_run(run.id, infrastructure_pid=self.mark)
        return True

    def flow_of(
        self, client: SyncPrefectClient, deployment_id: UUID | None, entrypoint: str | None = None
    ) -> Flow[Any, Any]:
        """The deployment's flow, loaded from its entrypoint once and kept (imports paid once)."""
        from prefect.flows import load_flow_from_entrypoint

        if deployment_id is None:
            raise RuntimeError("a flow run without a deployment cannot run here")
        with self._lock:
            cached = self.flows.get(deployment_id)
        if cached is not None:
            return cached
        entrypoint = entrypoint or client.read_deployment(deployment_id).entrypoint
        if not entrypoint:
            raise RuntimeError(f"deployment {deployment_id} has no entrypoint")
        flow: Flow[Any, Any] = load_flow_from_entrypoint(entrypoint)
        with self._lock:
            return self.flows.setdefault(deployment_id, flow)

    def execute(self, run: FlowRun) -> None:
        """Run one flow in this thread with Prefect's engine (it reports every state itself);
        a failure before the engine starts is reported as Crashed."""
        from prefect.client.orchestration import get_client
        from prefect.flow_engine import run_flow
        from prefect.states import Crashed

        started = time.monotonic()
        try:
            with get_client(sync_client=True) as client:
                flow = self.flow_of(client, run.deployment_id)
                fresh = client.read_flow_run(run.id)
            state = run_flow(flow, flow_run=fresh, return_type="state")
            log.info("%s (%s): %s in %.1f s", run.name, run.id, getattr(state, "type", state),
                     time.monotonic() - started)  # fmt: skip
        except BaseException as exc:
            log.exception("flow run %s (%s) could not run", run.name, run.id)
            message = f"the runner could not run it: {type(exc).__name__}: {exc}"
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(run.id, Crashed(message=message))
            if not isinstance(exc, Exception):
                raise


def serve_forever(pool: str, limit: int, poll_seconds: float, grace: float = 5.0) -> None:
    """Run until SIGTERM or SIGINT (the stack's `down` sends SIGTERM to the whole group). Runs
    still going after `grace` s are left Running: the next start marks them crashed and redoes
    them once."""
    import os
    import signal

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner = FlowRunner(pool, limit, poll_seconds)
    runner.serve(stop)
    deadline = time.monotonic() + grace
    while runner.free_slots() < limit and time.monotonic() < deadline:
        time.sleep(0.1)
    logging.shutdown()
    os._exit(0)
