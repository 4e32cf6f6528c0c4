"""Shared fixtures. Test folders mirror the code's layout; each test has one kind marker (unit, data,
model, service, integration): its module's `pytestmark`, else its folder's default below."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bioprocessml.settings import DEFAULT_SPEC, disable_telemetry
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec, load_spec

TESTS = Path(__file__).parent
pytest_plugins = ["tests.stack"]  # the one shared stack (session fixture `stack`)
KINDS = {"unit", "data", "model", "service", "integration"}
FOLDER_KIND = {
    "ground": "unit",
    "cli": "unit",
    "ingest": "data",
    "simulation": "data",
    "models": "model",
    "backtest": "model",
    "monitoring": "unit",
    "serving": "service",
    "integration": "integration",
    "faults": "integration",
}

# Small, fast batches for tests: 48 h at 10-minute sampling.
TINY = SimConfig(duration_h=48.0, online_interval_min=10.0)


def pytest_configure(config: pytest.Config) -> None:
    disable_telemetry()


@pytest.fixture(scope="session", autouse=True)
def _dvc_site_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """DVC keeps per-repo state in /var/tmp/dvc by default; keep the tests' in pytest's temp."""
    os.environ["DVC_SITE_CACHE_DIR"] = str(tmp_path_factory.mktemp("dvc-site"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The fault suite kills and restarts parts of the shared stack: it runs after the rest.
    items.sort(key=lambda item: Path(str(item.fspath)).relative_to(TESTS).parts[0] == "faults")
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in KINDS):
            folder = Path(str(item.fspath)).relative_to(TESTS).parts[0]
            item.add_marker(getattr(pytest.mark, FOLDER_KIND[folder]))


@pytest.fixture(scope="session")
def spec() -> DatasetSpec:
    return load_spec(DEFAULT_SPEC)


@pytest.fixture(scope="session")
def plant_spec() -> DatasetSpec:
    """A second spec: other column names, other units, another CSV dialect, id from file name."""
    return load_spec(TESTS / "ground" / "specs" / "plant_x.yaml")


@pytest.fixture(scope="session")
def normal_batches() -> list[pd.DataFrame]:
    return simulate(20, "normal", seed=7)


# --- service and rollout: PLS champions trained on tiny batches, and batches seen live ---
@pytest.fixture(scope="session")
def training_batches() -> list[pd.DataFrame]:
    return simulate(8, "normal", seed=21, cfg=TINY)


@pytest.fixture(scope="session")
def live_batches() -> list[pd.DataFrame]:
    """Batches the service sees live, from the same process as the training batches."""
    return simulate(12, "normal", seed=22, start=101, cfg=TINY)


@pytest.fixture(scope="session")
def pls(training_batches: list[pd.DataFrame], spec: DatasetSpec) -> dict[str, Any]:
    from models.base import TASKS
    from models.features import FeatureSpec, make_samples
    from models.pls import PLSModel

    features = FeatureSpec.from_spec(spec)
    return {
        task: PLSModel(task, features).fit(make_samples(training_batches, features, task))
        for task in TASKS
    }
