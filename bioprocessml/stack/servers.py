"""Start and stop the embedded stack: Prefect server (SQLite), deployments, the flow runner (or a
process worker), the watcher, the MLflow UI and the BentoML prediction service.

Every process runs in its own session with its log under `<state_dir>/logs/` and its record
under `<state_dir>/pids/` (`processes.py`): `up` starts only what is not running, `down` stops
each whole process group and then anything else that carries the stack's mark.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

from bioprocessml.settings import PROJECT_ROOT, TELEMETRY_OFF, Settings
from bioprocessml.stack import processes
from bioprocessml.stack.deployments import BIN, WORK_POOL, StackError, deploy_flows

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for tests, benchmarks and the demo)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(settings: Settings) -> dict[str, str]:
    """Environment for every process of the stack: these exact settings (paths made absolute),
    one state folder, telemetry off."""
    state = settings.state_dir.resolve()
    env = {**os.environ, **TELEMETRY_OFF, **settings_env(settings)}
    env.update(
        PREFECT_HOME=str(state / "prefect"),
        DVC_SITE_CACHE_DIR=str(state / "dvc-site"),
        PREFECT_API_URL=settings.prefect_api_url,
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        PREFECT_SERVER_DATABASE_TIMEOUT="30",
        # The reconcile schedule needs only its next runs ahead: the default inserts up to 100
        # into SQLite at once (an hour ahead at least), and they contend with the chain's writes.
        PREFECT_SERVER_SERVICES_SCHEDULER_MAX_RUNS="3",
        # A locked SQLite answer (a 503 the client retries after seconds) is logged, not hidden:
        # the server's log says when the database is what slows the chain.
        PREFECT_SERVER_LOG_RETRYABLE_ERRORS="true",
        **{processes.STACK_MARK: processes.stack_id(settings.state_dir)},
    )
    token = admin_token(settings)
    if token:
        env["BIOPROCESSML_SERVING__ADMIN_TOKEN"] = token
    return env


def settings_env(settings: Settings) -> dict[str, str]:
    """`BIOPROCESSML_*` variables that make `Settings()` in a child process equal `settings`."""
    absolute = settings.model_copy(
        update={
            "state_dir": settings.state_dir.resolve(), "data_dir": settings.data_dir.resolve(),
            "spec_path": settings.spec_path.resolve(), "reports_dir": settings.reports_dir.resolve(),
            "mlflow_tracking_uri": settings.tracking_uri, "dvc_remote": settings.dvc_remote_path,
        }
    )  # fmt: skip
    env = {}
    for key, value in absolute.model_dump(
        mode="json", exclude={"serving": {"admin_token"}}
    ).items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[f"BIOPROCESSML_{key.upper()}"] = text
    return env


def admin_token(settings: Settings) -> str | None:
    """The service's admin token: the configured one, else the one `up` generated for its
    processes (kept in the state folder, readable by the owner only)."""
    if settings.serving.admin_token is not None:
        return settings.serving.admin_token.get_secret_value()
    path = _token_file(settings)
    return path.read_text().strip() if path.is_file() else None


def _token_file(settings: Settings) -> Path:
    return settings.state_dir / "admin-token"


def ensure_admin_token(settings: Settings) -> None:
    path = _token_file(settings)
    if settings.serving.admin_token is None and not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))


def start_process(
    settings: Settings, name: str, args: list[str], cwd: Path
) -> subprocess.Popen[bytes]:
    """Start one process of the stack as it is (no check for a running one: see `ensure_process`)."""
    return processes.spawn(settings.state_dir, name, args, cwd, stack_env(settings))


def wait_http(
    url: str, alive: Callable[[], bool] | subprocess.Popen[bytes], timeout: float, name: str
) -> None:
    if isinstance(alive, subprocess.Popen):
        proc = alive
        alive = lambda: proc.poll() is None  # noqa: E731
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise StackError(f"{name} exited at start; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, OSError):
            pass  # not listening yet
        time.sleep(0.5)
    raise StackError(f"{name} did not answer {url} within {timeout:.0f} s; see its log")


def ensure_process(
    settings: Settings, name: str, args: list[str], cwd: Path, port: int | None = None
) -> Callable[[], bool]:
    """Start `name` unless its recorded process is alive; returns a liveness probe.

    A record whose process died is cleared with whatever its group left behind; a port held by
    another program is an error, never a second server that dies at once."""
    state = settings.state_dir
    record = processes.read_record(state, name)
    if record is not None and record.alive():
        log.info("%s is running already (pid %d)", name, record.pid)
        return record.alive
    if record is not None:
        processes.stop_group(record.pid, grace=3.0)
        processes.forget(state, name)
    if port is not None:
        owner = processes.port_owner(port)
        if owner is not None:
            raise StackError(
                f"cannot start {name}: port {port} is taken by {owner}; stop it or choose "
                "another port in the settings"
            )
    proc = processes.spawn(state, name, args, cwd, stack_env(settings), port)
    return lambda: proc.poll() is None


def start_prefect_server(settings: Settings, timeout: float = 120) -> None:
    url = urlparse(settings.prefect_api_url)
    args = [str(BIN / "python"), "-m", "bioprocessml.stack.prefect_server",
            "--host", url.hostname or "127.0.0.1", "--port", str(url.port)]  # fmt: skip
    alive = ensure_process(settings, "prefect-server", args, PROJECT_ROOT, url.port)
    wait_http(f"{settings.prefect_api_url}/health", alive, timeout, "Prefect server")


EXECUTORS = {"runner": "runner", "process": "prefect-worker"}


def start_executor(settings: Settings) -> None:
    """The long-lived runner (flows in threads of one process that keeps its imports), or a
    Prefect process worker (a new process per flow run); the other one is stopped."""
    chosen = settings.runtime.executor
    other = EXECUTORS["process" if chosen == "runner" else "runner"]
    record = processes.read_record(settings.state_dir, other)
    if record is not None:
        processes.stop_group(record.pid)
        processes.forget(settings.state_dir, other)
    if chosen == "runner":
        args = [str(BIN / "bioprocessml"), "runner"]
    else:
        args = [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL,
                "--limit", str(settings.runtime.concurrency)]  # fmt: skip
    ensure_process(settings, EXECUTORS[chosen], args, PROJECT_ROOT)


def start_watcher(settings: Settings) -> None:
    ensure_process(settings, "watcher", [str(BIN / "bioprocessml"), "watch"], PROJECT_ROOT)


def start_service(settings: Settings, timeout: float = 180) -> None:
    """`bentoml serve` of service.py; live once /livez answers (ready only with a champion)."""
    args = [str(BIN / "bentoml"), "serve", "service:BioprocessService", "--host",
            settings.serving.host, "--port", str(settings.serving.port)]  # fmt: skip
    alive = ensure_process(settings, "bentoml-service", args, PROJECT_ROOT, settings.serving.port)
    wait_http(f"{settings.serving.url}/livez", alive, timeout, "BentoML service")


def start_mlflow_ui(settings: Settings) -> Callable[[], bool]:
    """An MLflow server on the same SQLite store, for its UI (runs, plots, registry aliases);
    the pipeline itself writes to the store directly."""
    args = [str(BIN / "mlflow"), "server", "--backend-store-uri", settings.tracking_uri,
            "--host", "127.0.0.1", "--port", str(settings.mlflow_ui_port), "--workers", "1"]  # fmt: skip
    return ensure_process(settings, "mlflow-ui", args, settings.state_dir, settings.mlflow_ui_port)


def check_ports(settings: Settings, ui: bool, serve: bool) -> None:
    """Fail before starting anything when a port the stack needs is held by another program."""
    wanted = [("prefect-server", urlparse(settings.prefect_api_url).port)]
    wanted += [("bentoml-service", settings.serving.port)] if serve else []
    wanted += [("mlflow-ui", settings.mlflow_ui_port)] if ui else []
    for name, port in wanted:
        record = processes.read_record(settings.state_dir, name)
        if port is None or (record is not None and record.alive()):
            continue
        owner = processes.port_owner(port)
        if owner is not None:
            raise StackError(
                f"cannot start {name}: port {port} is taken by {owner}; stop it or choose "
                "another port in the settings"
            )


def create_tracking_store(settings: Settings) -> None:
    """Create the MLflow store's tables once, here, before any server starts: the UI, the service
    and the flows would otherwise all create them at once on a new SQLite file, and the losers
    fail ("table registered_models already exists")."""
    from models.registry import configure

    configure(settings)


def up(settings: Settings, watch: bool = True, serve: bool = True, ui: bool = True) -> None:
    """Start what is missing: on a running or half-running stack only the dead parts start."""
    settings.prepare()
    ensure_admin_token(settings)
    check_ports(settings, ui, serve)
    create_tracking_store(settings)
    mlflow_ui = start_mlflow_ui(settings) if ui else None  # starts while the rest comes up
    start_prefect_server(settings)
    deploy_flows(settings)
    start_executor(settings)
    if serve:
        start_service(settings)
    if watch:
        start_watcher(settings)
    from bioprocessml.stack.observability import start_observability  # issue 18

    start_observability(settings, ui=ui)  # issue 18: exporter, Evidently UI, Prometheus, notify
    if mlflow_ui is not None:
        wait_http(f"http://127.0.0.1:{settings.mlflow_ui_port}/health", mlflow_ui, 120, "MLflow UI")


STOP_ORDER = [
    "watcher",
    "runner",
    "prefect-worker",
    "bentoml-service",
    "mlflow-ui",
]  # clients first


def down(settings: Settings, grace: float = 10.0) -> list[str]:
    """Stop every process this state folder started, each as its whole process group (SIGTERM,
    then SIGKILL after `grace` s), then any process still carrying the stack's mark (flow runs
    in sessions of their own, children of a killed leader). Returns what was stopped."""
    state = settings.state_dir
    found = sorted(
        processes.records(state),
        key=lambda r: STOP_ORDER.index(r.name) if r.name in STOP_ORDER else len(STOP_ORDER),
    )
    stopped = [r.name for r in found if processes.stop_group(r.pid, grace)]
    for record in found:
        processes.forget(state, record.name)
    for legacy in (state / "pids").glob("*.pid"):  # records of older versions: a bare pid
        if processes.stop_group(int(legacy.read_text()), grace):
            stopped.append(legacy.stem)
        legacy.unlink()
    strays = processes.kill_marked(processes.stack_id(state))
    if strays:
        log.warning("stopped %d stray processes of this stack: %s", len(strays), strays)
        stopped.append(f"{len(strays)} stray process(es)")
    return stopped
