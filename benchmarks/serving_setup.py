"""What both serving benchmarks share: a temporary state folder the service reads through the
environment, models registered as training would register them, and the server log's errors."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from bioprocessml.settings import Settings
from bioprocessml.stack.servers import free_port, start_service
from models.registry import Lineage, configure, log_candidate, register


def register_model(settings: Settings, model: Any, example: pd.DataFrame) -> str:
    """Log and register a model as training would; returns its version."""
    experiment = configure(settings)
    lineage = Lineage(
        data_version="benchmark", git_commit="benchmark", spec_sha256="0" * 64,
        train_batches=["N001"], holdout_batches=[],
    )  # fmt: skip
    run_id, uri = log_candidate(model, {"rmse": 0.1}, lineage, example, [], experiment)
    return register(uri, model.task, lineage, run_id)


def server_env(root: Path, token: str, spec_path: Path | None = None) -> Settings:
    """The service reads its settings from the environment; the subprocess inherits them."""
    os.environ.update(
        BIOPROCESSML_STATE_DIR=str(root / "state"),
        BIOPROCESSML_DATA_DIR=str(root / "data"),
        BIOPROCESSML_SERVING__ADMIN_TOKEN=token,
        BIOPROCESSML_SERVING__PORT=str(free_port()),
        BIOPROCESSML_SERVING__POLL_SECONDS="600",  # switches only through /admin/reload
        BENTOML_HOME=str(root / "bentoml"),
    )
    if spec_path is not None:
        os.environ["BIOPROCESSML_SPEC_PATH"] = str(spec_path)
    return Settings().prepare()


def start_ready_service(settings: Settings, timeout: float = 180) -> None:
    """`bentoml serve` of the service (as `bioprocessml up` starts it), then wait until ready."""
    start_service(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{settings.serving.url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # still starting
        time.sleep(0.5)
    raise RuntimeError(f"the service was not ready within {timeout:.0f} s; see its log")


def service_log(settings: Settings) -> Path:
    return settings.state_dir / "logs" / "bentoml-service.log"


def server_log_problems(path: Path) -> list[str]:
    if not path.exists():
        return []
    words = ("Traceback", "ERROR", "Exception", "CRITICAL")
    lines = path.read_text(errors="replace").splitlines()
    return [line for line in lines if any(word in line for word in words)]


def machine() -> dict[str, Any]:
    """CPUs, platform and the load average now (the machine is shared: say how busy it was)."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1_5_15_min": list(os.getloadavg()),
    }
