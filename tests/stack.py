"""One real stack per test session, shared by the integration tests and the fault suite
(registered as a plugin by tests/conftest.py): Prefect server (SQLite), deployments from
prefect.yaml, the flow runner, the watcher and the BentoML service, on free ports in a temporary
state folder. Reconcile runs every 10 s here, so lost work is found within a test's patience."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from bioprocessml.settings import Observability, Runtime, Serving, Settings
from bioprocessml.stack.servers import down, free_port, up

T = TypeVar("T")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("stack")
    # Small and fast for the stack's worker processes: PLS only, a first model after 10 tiny
    # batches (with fewer, models rarely beat the naive forecast and no champion is made).
    overrides = {
        "BIOPROCESSML_THRESHOLDS__BOOTSTRAP_BATCHES": "10",
        "BIOPROCESSML_TRAINING__CANDIDATES": '["pls"]',
        # The tiny PLS champion sits near the naive forecast; the live "worse than naive"
        # retirement (unit tests, the backtest and the slow campaign cover it) would leave the
        # fault tests that need a serving champion without one (503) at random.
        "BIOPROCESSML_THRESHOLDS__NAIVE_WINDOW": "1000",
        "BIOPROCESSML_REPORTS_DIR": str(root / "reports"),
    }
    saved = {key: os.environ.get(key) for key in overrides}
    os.environ.update(overrides)
    settings = Settings(
        state_dir=root / "state",
        data_dir=root / "data",
        prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
        watch_settle_seconds=0.5,
        serving=Serving(port=free_port(), admin_token="stack-admin-token-not-for-logs-0123"),
        observability=Observability(exporter_port=free_port()),  # issue 18
        runtime=Runtime(reconcile_seconds=30, reconcile_grace_seconds=15),
    )
    try:
        up(settings, watch=True, ui=False)
        yield settings
    finally:
        down(settings)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wait_until(probe: Callable[[], T | None], timeout: float = 120.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def prefect_post(settings: Settings, route: str, body: dict[str, Any]) -> Any:
    """POST to the Prefect API; a busy server's 503, or a timeout of a read (`…/filter`, SQLite
    locked by a burst of writes), is retried a few times."""
    for attempt in range(5):
        try:
            response = httpx.post(f"{settings.prefect_api_url}/{route}", json=body, timeout=30)
        except httpx.TimeoutException:
            if attempt == 4 or not route.endswith("filter"):
                raise
            time.sleep(2 * (attempt + 1))
            continue
        if response.status_code != 503 or attempt == 4:
            break
        time.sleep(2 * (attempt + 1))
    response.raise_for_status()
    return response.json()


def flow_runs(settings: Settings, deployment: str) -> list[dict[str, Any]]:
    body = {"deployments": {"name": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC"}
    return list(prefect_post(settings, "flow_runs/filter", body))


def events(settings: Settings, name: str) -> list[dict[str, Any]]:
    body = {"filter": {"event": {"name": [name]}, "occurred": {"since": "2000-01-01T00:00:00Z"}}}
    return list(prefect_post(settings, "events/filter", body)["events"])


def drop(source: Path, incoming: Path, name: str | None = None) -> Path:
    """Copy a file into incoming/ the way a transfer tool would: temporary name, then rename."""
    target = incoming / (name or source.name)
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(source.read_bytes())
    partial.rename(target)
    return target
