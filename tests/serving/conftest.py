"""Service tests: a temporary registry with PLS champions, challengers made better, equal or
worse on purpose, and request rows cut from simulated batches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bioprocessml.serving.db import engine_for, predictions
from bioprocessml.settings import Settings
from bioprocessml.stack.servers import free_port
from models.base import Prediction, Task
from models.biased import BiasedModel
from models.registry import CHAMPION, Lineage, configure, log_candidate, register, set_alias

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Broken(BiasedModel):
    """A challenger that fails on every request (its error rate must trigger a rollback)."""

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        raise RuntimeError("broken on purpose")


@pytest.fixture
def serving_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings the service reads from the environment: temp state, an admin token, a port on
    which nothing listens (the rollout's reload call fails fast; the tests reload by hand)."""
    monkeypatch.setenv("BIOPROCESSML_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BIOPROCESSML_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BIOPROCESSML_SERVING__ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("BIOPROCESSML_SERVING__PORT", str(free_port()))
    monkeypatch.setenv("BIOPROCESSML_SERVING__POLL_SECONDS", "600")
    return Settings().prepare()


def register_model(settings: Settings, candidate: Any, example: pd.DataFrame) -> str:
    """Log and register a model as training would (lineage of a test), returning its version."""
    experiment = configure(settings)
    lineage = Lineage(
        data_version="test", git_commit="test", spec_sha256="0" * 64,
        train_batches=["N001"], holdout_batches=[],
    )  # fmt: skip
    run_id, uri = log_candidate(candidate, {"rmse": 0.1}, lineage, example, [], experiment)
    return register(uri, candidate.task, lineage, run_id)


def register_champions(
    settings: Settings, models: dict[Task, Any], example: pd.DataFrame
) -> dict[Task, str]:
    versions = {task: register_model(settings, model, example) for task, model in models.items()}
    for task, version in versions.items():
        set_alias(task, CHAMPION, version)
    return versions


@pytest.fixture(scope="session")
def asgi_app() -> Any:
    """One ASGI app per session (BentoML registers its metrics once per process); each test's
    client starts it again, which makes a new service instance with that test's settings."""
    from service import BioprocessService

    return BioprocessService.to_asgi()


@pytest.fixture
def client(serving_settings: Settings, asgi_app: Any) -> Iterator[TestClient]:
    with TestClient(asgi_app) as test_client:
        yield test_client


def logged(settings: Settings) -> pd.DataFrame:
    with engine_for(settings.prediction_log_url).connect() as conn:
        return pd.DataFrame(conn.execute(select(predictions)).mappings().all())


def wait_for_rows(settings: Settings, n: int, timeout: float = 20.0) -> pd.DataFrame:
    """Shadow predictions are logged after the answer is sent: wait until they land."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = logged(settings)
        if len(log) >= n:
            return log
        time.sleep(0.05)
    raise AssertionError(f"expected {n} logged predictions, found {len(logged(settings))}")
