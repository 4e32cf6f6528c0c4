"""Start and stop the embedded stack: Prefect server (SQLite), deployments, worker, watcher and
the BentoML prediction service.

Every process runs in its own session with its log under `<state_dir>/logs/` and its pid under
`<state_dir>/pids/`, so `bioprocessml down` (and tests) can stop exactly what was started.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import PROJECT_ROOT, TELEMETRY_OFF, Settings

log = logging.getLogger(__name__)
BIN = Path(sys.executable).parent
WORK_POOL = "bioprocessml"
MONITORING_QUEUE = "monitoring"


class StackError(BioprocessMLError):
    """A server of the stack did not start or a set-up command failed."""


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


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.state_dir / "pids" / f"{name}.pid"


def start_process(
    settings: Settings, name: str, args: list[str], cwd: Path
) -> subprocess.Popen[bytes]:
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    _pid_file(settings, name).parent.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            args, cwd=cwd, env=stack_env(settings), stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    _pid_file(settings, name).write_text(str(proc.pid))
    return proc


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (URLError, OSError):
            pass  # not listening yet
        time.sleep(0.5)
    raise StackError(f"{name} did not answer {url} within {timeout:.0f} s; see its log")


def run_prefect(settings: Settings, *args: str, cwd: Path = PROJECT_ROOT) -> str:
    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args], cwd=cwd, env=stack_env(settings),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise StackError(f"prefect {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def start_prefect_server(settings: Settings, timeout: float = 120) -> None:
    url = urlparse(settings.prefect_api_url)
    args = [str(BIN / "prefect"), "server", "start", "--host", url.hostname or "127.0.0.1"]
    proc = start_process(settings, "prefect-server", [*args, "--port", str(url.port)], PROJECT_ROOT)
    wait_http(f"{settings.prefect_api_url}/health", proc, timeout, "Prefect server")


def deploy_flows(settings: Settings) -> None:
    """Create the process work pool, its `monitoring` queue (one run at a time, oldest first)
    and the deployments of prefect.yaml; all idempotent."""
    run_prefect(settings, "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
    try:
        run_prefect(settings, "work-queue", "create", MONITORING_QUEUE, "--pool", WORK_POOL,
                    "--limit", "1")  # fmt: skip
    except StackError as exc:
        if "already exists" not in str(exc):
            raise
    run_prefect(settings, "deploy", "--all")


def start_worker(settings: Settings) -> None:
    args = [str(BIN / "prefect"), "worker", "start", "--pool", WORK_POOL, "--limit", "4"]
    start_process(settings, "prefect-worker", args, PROJECT_ROOT)


def start_watcher(settings: Settings) -> None:
    start_process(settings, "watcher", [str(BIN / "bioprocessml"), "watch"], PROJECT_ROOT)


def start_service(settings: Settings, timeout: float = 180) -> None:
    """`bentoml serve` of service.py; live once /livez answers (ready only with a champion)."""
    args = [str(BIN / "bentoml"), "serve", "service:BioprocessService", "--host",
            settings.serving.host, "--port", str(settings.serving.port)]  # fmt: skip
    proc = start_process(settings, "bentoml-service", args, PROJECT_ROOT)
    wait_http(f"{settings.serving.url}/livez", proc, timeout, "BentoML service")


def start_mlflow_ui(settings: Settings) -> subprocess.Popen[bytes]:
    """An MLflow server on the same SQLite store, for its UI (runs, plots, registry aliases);
    the pipeline itself writes to the store directly."""
    args = [str(BIN / "mlflow"), "server", "--backend-store-uri", settings.tracking_uri,
            "--host", "127.0.0.1", "--port", str(settings.mlflow_ui_port), "--workers", "1"]  # fmt: skip
    return start_process(settings, "mlflow-ui", args, settings.state_dir)


def up(settings: Settings, watch: bool = True, serve: bool = True, ui: bool = True) -> None:
    settings.prepare()
    ensure_admin_token(settings)
    mlflow_ui = start_mlflow_ui(settings) if ui else None  # starts while the rest comes up
    start_prefect_server(settings)
    deploy_flows(settings)
    start_worker(settings)
    if serve:
        start_service(settings)
    if watch:
        start_watcher(settings)
    from bioprocessml.stack.observability import start_observability  # issue 18

    start_observability(settings, ui=ui)  # issue 18: exporter, Evidently UI, Prometheus, notify
    if mlflow_ui is not None:
        wait_http(f"http://127.0.0.1:{settings.mlflow_ui_port}/health", mlflow_ui, 120, "MLflow UI")


STOP_ORDER = ["watcher", "prefect-worker", "bentoml-service", "mlflow-ui"]  # clients first


def down(settings: Settings, grace: float = 10.0) -> list[str]:
    """Stop every process this state folder started (whole process groups): SIGINT, as Ctrl-C
    would, then SIGTERM, then SIGKILL for anything still alive after `grace` seconds."""
    pid_files = sorted(
        (settings.state_dir / "pids").glob("*.pid"),
        key=lambda p: (
            STOP_ORDER.index(p.stem) if p.stem in STOP_ORDER else len(STOP_ORDER),
            p.stem,
        ),
    )
    stopped = []
    for pid_file in pid_files:
        pid = int(pid_file.read_text())
        if _signal_group(pid, signal.SIGINT):
            deadline = time.monotonic() + grace
            escalated = False
            while time.monotonic() < deadline and _alive(pid):
                if not escalated and time.monotonic() > deadline - grace / 2:
                    escalated = _signal_group(pid, signal.SIGTERM)
                time.sleep(0.1)
            if _alive(pid):
                _signal_group(pid, signal.SIGKILL)
            stopped.append(pid_file.stem)
        pid_file.unlink()
    return stopped


def _signal_group(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child: fall back to probing with signal 0
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
