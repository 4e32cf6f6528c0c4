"""The MLflow store or the prediction-log database unavailable while clients call `/predict`:
the service keeps answering from the models it has loaded. Unavailable = another connection
holds an exclusive lock on the SQLite file, as a stuck writer or a backup would."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bioprocessml.ingest.accepted import accepted_ids, read_accepted
from bioprocessml.serving.request import request_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import load_spec
from tests.stack import wait_until


@contextmanager
def locked(database: Path) -> Iterator[None]:
    db = sqlite3.connect(database, timeout=1, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def answers_while_locked(stack: Settings, database: Path, seconds: float) -> list[int]:
    ready = lambda: httpx.get(f"{stack.serving.url}/readyz", timeout=10).status_code == 200  # noqa: E731
    wait_until(ready, 300, "a champion in the service")
    batch_id = accepted_ids(stack)[-1]
    rows = request_rows(read_accepted(stack, batch_id), load_spec(stack.spec_path), 24.0)
    body = {"batch_id": batch_id, "rows": rows}
    codes: list[int] = []
    with locked(database):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            try:
                codes.append(
                    httpx.post(f"{stack.serving.url}/predict", json=body, timeout=15).status_code
                )
            except httpx.HTTPError:
                codes.append(0)
    return codes


def test_predict_answers_while_the_mlflow_store_is_locked(stack: Settings) -> None:
    store = Path(stack.tracking_uri.removeprefix("sqlite:///"))
    codes = answers_while_locked(stack, store, 8.0)
    assert len(codes) >= 5 and set(codes) == {200}, codes


@pytest.mark.xfail(
    strict=True,
    reason="service.py writes each prediction-log row inside the request; a locked log database "
    "fails /predict. Needs a buffer in serving/prediction_log.record (service owner, issue 17).",
)
def test_predict_answers_while_the_prediction_log_is_locked(stack: Settings) -> None:
    log_db = Path(stack.prediction_log_url.removeprefix("sqlite:///"))
    result: dict[str, list[int]] = {}
    worker = threading.Thread(
        target=lambda: result.update(codes=answers_while_locked(stack, log_db, 8.0))
    )
    worker.start()
    worker.join(120)
    codes = result.get("codes", [])
    assert len(codes) >= 5 and set(codes) == {200}, codes
