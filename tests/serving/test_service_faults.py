"""The serving database or the MLflow store unavailable: the service answers from the models it
has loaded; log rows wait and are written when the database answers, or are counted as lost.
Unavailable = another connection holds an exclusive lock on the SQLite file (a stuck writer)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, select
from starlette.testclient import TestClient

from bioprocessml.serving.db import engine_for, metadata, predictions
from bioprocessml.serving.log_writer import LogWriter
from bioprocessml.serving.prediction_log import LoggedPrediction
from bioprocessml.serving.request import request_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from tests.faults.test_serving_faults import locked
from tests.serving.conftest import register_champions


def entry(i: int) -> LoggedPrediction:
    return LoggedPrediction(
        request_id=f"r{i}", batch_id="B1", task="soft_sensor", model_version="1",
        role="champion", route="champion", served=True, batch_time_h=float(i), mean=1.0,
        lower=0.5, upper=1.5, latency_ms=1.0,
    )  # fmt: skip


def count(engine: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(predictions)).scalar_one())


def lost() -> float:
    return (
        REGISTRY.get_sample_value("bioprocessml_log_rows_lost_total", {"table": "predictions"})
        or 0.0
    )


def test_rows_wait_while_the_database_is_locked_and_are_written_after(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    metadata.create_all(engine)
    writer = LogWriter(engine, capacity=5)
    before = lost()
    with locked(path):
        writer.record([entry(i) for i in range(3)])
        writer.record([entry(i) for i in range(3, 8)])  # 3 fit, 5 do not: lost, counted
        assert not writer.flush(timeout=1.0)  # nothing could be written
    assert writer.flush(timeout=30.0)
    assert count(engine) == 5 and lost() - before == 3
    writer.close()


def test_predict_and_batches_answer_while_the_prediction_log_is_locked(
    asgi_app: Any, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    register_champions(serving_settings, pls, training_batches[0].head(12))
    rows = request_rows(live_batches[0], spec, 12.0)
    log_db = Path(serving_settings.prediction_log_url.removeprefix("sqlite:///"))
    with TestClient(asgi_app) as client:
        assert client.get("/readyz").status_code == 200
        with locked(log_db):
            start = time.monotonic()
            for i in range(10):
                body = {"batch_id": "N101", "rows": rows[: 10 + i]}
                assert client.post("/predict", json=body).status_code == 200
                step = {"first_row": i, "rows": rows[i : i + 1]}
                assert client.post("/batches/N101/rows", json=step).status_code == 200
            assert time.monotonic() - start < 10  # never waited for the locked database
        # After the lock: every answer's log row is written (20 requests x 2 tasks).
        engine = engine_for(serving_settings.prediction_log_url)
        deadline = time.monotonic() + 60
        while count(engine) < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(engine) == 40
        assert client.get("/batches/N101").json()["rows"] == 10


def test_predict_answers_while_the_mlflow_store_is_locked(
    asgi_app: Any, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BIOPROCESSML_SERVING__POLL_SECONDS", "0.2")  # the poller hits the lock
    register_champions(serving_settings, pls, training_batches[0].head(12))
    body = {"batch_id": "N101", "rows": request_rows(live_batches[0], spec, 12.0)}
    store = Path(serving_settings.tracking_uri.removeprefix("sqlite:///"))
    with TestClient(asgi_app) as client, locked(store):
        codes = [client.post("/predict", json=body).status_code for _ in range(10)]
        time.sleep(1.0)
        codes += [client.post("/predict", json=body).status_code for _ in range(5)]
    assert set(codes) == {200}
