"""Model tests: a temporary Prefect API (one per session) and accepted data in a temp folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bioprocessml.dataset import BATCH_ID
from bioprocessml.ingest.versioning import commit_version
from bioprocessml.settings import Settings
from bioprocessml.simulation.simulator import SimConfig, simulate
from tests.conftest import TINY


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def accept_batches(
    settings: Settings, n: int, seed: int, start: int = 1, cfg: SimConfig = TINY
) -> str:
    """Put simulated batches into accepted/ and version them with DVC (as ingest would)."""
    settings.prepare()
    for frame in simulate(n, "normal", seed=seed, start=start, cfg=cfg):
        frame.to_csv(settings.accepted_dir / f"{frame[BATCH_ID].iloc[0]}.csv", index=False)
    return commit_version(settings.data_dir, settings.dvc_remote_path).md5


@pytest.fixture
def model_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings the flow will read from the environment: temp state and data, fast candidates."""
    monkeypatch.setenv("BIOPROCESSML_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BIOPROCESSML_DATA_DIR", str(tmp_path / "data"))
    return Settings()
