"""What `up` starts for operators next to the pipeline (issue 18): the pipeline exporter, the
Evidently UI on the monitoring workspace, Prometheus (when installed), a local webhook receiver
(if asked) and the notification automations. Each is a process of the stack like the others:
own session and log in `<state_dir>/logs/`, started only when not running already (`up` is
idempotent), stopped by `down`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from bioprocessml.settings import PROJECT_ROOT, Settings
from bioprocessml.stack import prometheus
from bioprocessml.stack.servers import ensure_process, wait_http

log = logging.getLogger(__name__)
BIN = Path(sys.executable).parent


def webhook_url(settings: Settings) -> str | None:
    obs = settings.observability
    if obs.webhook_url:
        return obs.webhook_url
    return f"http://127.0.0.1:{obs.receiver_port}/notify" if obs.local_receiver else None


def start_exporter(settings: Settings) -> None:
    port = settings.observability.exporter_port
    args = [str(BIN / "bioprocessml"), "exporter"]
    alive = ensure_process(settings, "pipeline-exporter", args, PROJECT_ROOT, port)
    wait_http(f"http://127.0.0.1:{port}/metrics", alive, 60, "pipeline exporter")


def start_evidently_ui(settings: Settings) -> None:
    from monitoring.dashboard import open_project, workspace_path

    open_project(settings)  # the project and its dashboard exist before the UI loads them
    port = settings.observability.evidently_port
    args = [str(BIN / "evidently"), "ui", "--workspace", str(workspace_path(settings)),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    alive = ensure_process(settings, "evidently-ui", args, settings.state_dir, port)
    wait_http(f"http://127.0.0.1:{port}/api/version", alive, 120, "Evidently UI")


def start_prometheus(settings: Settings) -> bool:
    if prometheus.binary() is None:
        log.warning("%s: skipped", prometheus.MISSING)
        return False
    folder = settings.state_dir.resolve() / "prometheus"
    prometheus.write_config(settings, folder)
    port = settings.observability.prometheus_port
    alive = ensure_process(
        settings, "prometheus", prometheus.command(settings, folder), folder, port
    )
    wait_http(f"http://127.0.0.1:{port}/-/ready", alive, 60, "Prometheus")
    return True


def start_receiver(settings: Settings) -> None:
    port = settings.observability.receiver_port
    args = [str(BIN / "bioprocessml"), "webhook-receiver", "--port", str(port)]
    ensure_process(settings, "webhook-receiver", args, PROJECT_ROOT, port)


def start_observability(settings: Settings, ui: bool = True) -> None:
    """Exporter and notifications; with `ui` (the operator's stack, not the tests' lean one)
    also the Evidently UI and Prometheus."""
    from bioprocessml.stack.notify import install_notifications

    start_exporter(settings)
    if ui:
        start_evidently_ui(settings)
        start_prometheus(settings)
    if settings.observability.local_receiver:
        start_receiver(settings)
    install_notifications(settings, webhook_url(settings))
