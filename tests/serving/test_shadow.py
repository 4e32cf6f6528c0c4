"""Shadow predictions: thinned to one per batch-hour, still logged and paired by the rollout's
scoring; the thread running them sheds and counts only what it cannot hold, and is started
again when it stopped, while every request is answered."""

from __future__ import annotations

import math
import threading
import time
from functools import partial
from typing import Any

import pandas as pd
import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from bioprocessml.serving import rollout
from bioprocessml.serving.answering import Answerer
from bioprocessml.serving.background import Rounds
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.prediction_log import truth_at
from bioprocessml.serving.request import request_rows
from bioprocessml.serving.rollout_store import active_rollout, evidence_of
from bioprocessml.serving.shadow_schedule import ShadowSchedule
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from models.biased import BiasedModel
from tests.serving.conftest import AUTH, logged, register_champions, register_model

FOLLOWED_H = 24.0


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"{name}_total") or 0.0


def test_schedule_is_due_once_per_slot_of_batch_time() -> None:
    schedule = ShadowSchedule(every_h=1.0)
    times = [round(0.2 * i, 1) for i in range(26)]  # 0 … 5 h every 12 min
    due = [t for t in times if schedule.due("soft_sensor", "B1", "2", t)]
    assert due == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert schedule.due("harvest", "B1", "2", 5.0) and schedule.due("soft_sensor", "B2", "2", 5.0)
    assert schedule.due("soft_sensor", "B1", "3", 5.0)  # another model version: its own slots
    assert schedule.due("soft_sensor", "B1", "2", 2.5)  # back in time: a new history
    assert not schedule.due("soft_sensor", "B1", "2", 2.9)
    every = ShadowSchedule(every_h=0.0)
    assert all(every.due("soft_sensor", "B1", "2", 1.0) for _ in range(3))


def test_schedule_forgets_the_least_recent_batches_beyond_its_capacity() -> None:
    schedule = ShadowSchedule(every_h=1.0, capacity=2)
    for batch in ("B1", "B2", "B3"):
        assert schedule.due("soft_sensor", batch, "2", 0.5)
    assert not schedule.due("soft_sensor", "B3", "2", 0.6)
    assert schedule.due("soft_sensor", "B1", "2", 0.6)  # forgotten: shadowed again


def test_work_beyond_capacity_is_dropped_and_counted() -> None:
    running, release, ran = threading.Event(), threading.Event(), list[int]()
    rounds = Rounds(interval=0.0, capacity=2)

    def block() -> None:
        running.set()
        release.wait(10)

    rounds.submit(block)
    assert running.wait(10)
    before = counter("bioprocessml_shadow_dropped")
    for i in range(5):
        rounds.submit(partial(ran.append, i))
    assert counter("bioprocessml_shadow_dropped") - before == 3
    release.set()
    rounds.close()
    assert ran == [0, 1]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_stopped_thread_is_started_again_and_counts_what_it_left() -> None:
    ran: list[int] = []
    rounds = Rounds(interval=0.2)
    restarts = counter("bioprocessml_shadow_worker_restarts")
    dropped = counter("bioprocessml_shadow_dropped")

    def stop() -> None:
        raise SystemExit("stops the thread")

    for work in (stop, lambda: ran.append(1), lambda: ran.append(2)):  # one round
        rounds.submit(work)
    rounds._thread.join(10)
    assert not rounds._thread.is_alive()
    assert counter("bioprocessml_shadow_dropped") - dropped == 3
    rounds.submit(lambda: ran.append(3))
    rounds.close()
    assert ran == [3]
    assert counter("bioprocessml_shadow_worker_restarts") - restarts == 1


@pytest.fixture
def serving_settings(
    request: pytest.FixtureRequest, serving_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """rollout.shadow_every_h as the test's parameter says (default 1 h)."""
    monkeypatch.setenv("BIOPROCESSML_ROLLOUT__SHADOW_EVERY_H", str(getattr(request, "param", 1.0)))
    return Settings()


@pytest.fixture
def in_shadow(
    serving_settings: Settings, pls: dict[Task, Any], training_batches: list[pd.DataFrame]
) -> str:
    """PLS champions; a soft-sensor challenger (the same PLS 0.3 g/L higher) in shadow."""
    example = training_batches[0].head(12)
    register_champions(serving_settings, pls, example)
    version = register_model(serving_settings, BiasedModel(pls["soft_sensor"], 0.3), example)
    rollout.begin(serving_settings, "soft_sensor", version, "test")
    return version


def follow(client: TestClient, batch_id: str, rows: list[dict[str, Any]]) -> list[float]:
    """Row by row; the batch time of every answer (all must be 200)."""
    client.post("/admin/reload", headers=AUTH)
    times = []
    for i, row in enumerate(rows):
        response = client.post(f"/batches/{batch_id}/rows", json={"first_row": i, "rows": [row]})
        assert response.status_code == 200, response.text
        times.append(response.json()["time_h"])
    return times


def first_in_slots(times: list[float], every_h: float) -> list[float]:
    if every_h == 0:
        return times
    slots = [math.floor(t / every_h) for t in times]
    return [t for i, t in enumerate(times) if i == 0 or slots[i] != slots[i - 1]]


def wait_for_challenger(settings: Settings, n: int, timeout: float = 30.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = logged(settings)
        if (log["role"] == "challenger").sum() >= n:
            return log
        time.sleep(0.05)
    raise AssertionError(f"expected {n} shadow predictions, found {len(log)} rows in all")


@pytest.mark.parametrize("serving_settings", [0.0, 1.0], indirect=True, ids=["all", "hourly"])
def test_shadow_predictions_are_logged_per_slot_and_paired_by_the_scoring(
    client: TestClient, serving_settings: Settings, in_shadow: str,
    live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    batch = live_batches[0]
    times = follow(client, "N101", request_rows(batch, spec, FOLLOWED_H))
    every_h = serving_settings.rollout.shadow_every_h
    due = first_in_slots(times, every_h)
    assert len(due) == (len(times) if every_h == 0 else math.floor(FOLLOWED_H) + 1)
    log = wait_for_challenger(serving_settings, len(due))
    soft = log[log["task"] == "soft_sensor"]
    shadow = soft[soft["role"] == "challenger"]
    assert len(shadow) == len(due) and not shadow["served"].any()
    assert sorted(shadow["batch_time_h"]) == pytest.approx(due)
    served = soft[soft["served"]].set_index("request_id")
    assert len(served) == len(times) and set(shadow["request_id"]) <= set(served.index)
    paired = served.loc[shadow["request_id"], "mean"].to_numpy()
    assert shadow["mean"].to_numpy() == pytest.approx(paired + 0.3, abs=1e-9)

    batch.to_csv(serving_settings.accepted_dir / "N101.csv", index=False)
    rollout.score_batch(serving_settings, "N101")
    state = active_rollout(engine_for(serving_settings.prediction_log_url), "soft_sensor")
    assert state is not None
    [evidence] = evidence_of(engine_for(serving_settings.prediction_log_url), state.id)
    judged = truth_at(batch, spec.target, "soft_sensor", pd.Series(due)).notna().sum()
    assert evidence.points == judged > 0
    assert evidence.challenger_error != evidence.champion_error


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_shadow_that_stops_its_thread_never_fails_an_answer(
    client: TestClient, serving_settings: Settings, in_shadow: str,
    live_batches: list[pd.DataFrame], spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    original, calls = Answerer.shadow, []

    def shadow_that_stops_once(self: Answerer, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit("the shadow thread stops")
        original(self, *args)

    monkeypatch.setattr(Answerer, "shadow", shadow_that_stops_once)
    restarts = counter("bioprocessml_shadow_worker_restarts")
    dropped = counter("bioprocessml_shadow_dropped")
    times = follow(client, "N102", request_rows(live_batches[1], spec, FOLLOWED_H))
    due = first_in_slots(times, serving_settings.rollout.shadow_every_h)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = logged(serving_settings)
        shadowed = int((log["role"] == "challenger").sum())
        lost = counter("bioprocessml_shadow_dropped") - dropped
        if shadowed + lost >= len(due):
            break
        time.sleep(0.05)
    assert shadowed + lost == len(due) and shadowed > 0  # each due shadow: logged or counted
    assert counter("bioprocessml_shadow_worker_restarts") - restarts == 1
    assert int(log["served"].sum()) == 2 * len(times)  # both tasks answered every request
