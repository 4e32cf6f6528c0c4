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
from bioprocessml.spec import DatasetSpec, load_spec
from tests.faults.conftest import put, valid_files
from tests.stack import wait_until

BOOTSTRAP = 10  # the shared stack's first retraining (tests/stack.py)


def ready(stack: Settings) -> bool:
    return httpx.get(f"{stack.serving.url}/readyz", timeout=10).status_code == 200


@pytest.fixture
def champion(stack: Settings, spec: DatasetSpec, tmp_path: Path) -> None:
    """A champion in the service. In the full run earlier tests have trained one; run alone,
    the fault suite feeds the stack enough valid batches for its first retraining."""
    missing = BOOTSTRAP - len(accepted_ids(stack))
    if not ready(stack) and missing > 0:
        for path in valid_files(tmp_path, spec, missing, 7801):
            put(path, stack.incoming_dir)
    wait_until(lambda: ready(stack), 600, "a champion in the service")


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


@pytest.mark.usefixtures("champion")
def test_predict_answers_while_the_mlflow_store_is_locked(stack: Settings) -> None:
    store = Path(stack.tracking_uri.removeprefix("sqlite:///"))
    codes = answers_while_locked(stack, store, 8.0)
    assert len(codes) >= 5 and set(codes) == {200}, codes


@pytest.mark.usefixtures("champion")
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
