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

from bioprocessml.dataset import TIME, to_spec_frame
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack import free_port
from models.base import Prediction, Samples, Task
from models.pls import PLSModel
from models.registry import CHAMPION, Lineage, configure, log_candidate, register, set_alias
from monitoring.serving_db import engine_for, predictions

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Offset:
    """A model whose answers are shifted by `offset`: a deliberately worse (or, as champion,
    a beatable) model with the same interface."""

    def __init__(self, base: PLSModel, offset: float) -> None:
        self.base, self.offset = base, offset
        self.name, self.task = f"{base.name}+{offset}", base.task

    def fit(self, samples: Samples) -> Offset:
        return self

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        p = self.base.predict(histories)
        return Prediction(p.mean + self.offset, p.lower + self.offset, p.upper + self.offset)


class Broken(Offset):
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


def request_rows(batch: pd.DataFrame, spec: DatasetSpec, upto_h: float) -> list[dict[str, Any]]:
    """The batch's rows up to a time, as a client sends them: the spec's columns and units."""
    part = to_spec_frame(batch[batch[TIME] <= upto_h], spec)
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in part.to_dict(orient="records")
    ]


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
