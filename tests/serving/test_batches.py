"""The incremental API in process: following a batch gives `/predict`'s answers exactly, rows
that do not continue the batch are refused saying where to continue, and a restarted service
or an evicted batch comes back from the stored rows."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from bioprocessml.dataset import TIME
from bioprocessml.serving.request import request_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.anchored import AssayAnchoredModel
from models.base import Task
from models.biased import BiasedModel
from models.features import FeatureSpec, make_samples
from models.pls import PLSModel
from tests.serving.conftest import AUTH, register_champions

ANSWERS = ("titer_now", "titer_at_harvest")


def post_rows(client: TestClient, batch_id: str, first: int, rows: list[dict[str, Any]]) -> Any:
    return client.post(f"/batches/{batch_id}/rows", json={"first_row": first, "rows": rows})


def follow(
    client: TestClient, batch_id: str, rows: list[dict[str, Any]], sizes: list[int]
) -> list[dict[str, Any]]:
    """Send the rows in blocks of `sizes` (cycled); every answer."""
    answers, start, i = [], 0, 0
    while start < len(rows):
        block = rows[start : start + sizes[i % len(sizes)]]
        response = post_rows(client, batch_id, start, block)
        assert response.status_code == 200, response.text
        answers.append(response.json())
        start, i = start + len(block), i + 1
        assert answers[-1]["rows"] == start
    return answers


def same_answer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("mean", "lower", "upper", "version", "route", "mode")
    return a["time_h"] == b["time_h"] and all(
        (a[k] is None and b[k] is None) or all(a[k][f] == b[k][f] for f in keys) for k in ANSWERS
    )


@pytest.fixture
def champions(
    serving_settings: Settings, pls: dict[Task, Any], training_batches: list[pd.DataFrame]
) -> dict[Task, str]:
    return register_champions(serving_settings, pls, training_batches[0].head(12))


@pytest.mark.usefixtures("champions")
def test_following_a_batch_answers_exactly_as_the_whole_history(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    rows = request_rows(live_batches[0], spec, 40.0)
    answers = follow(client, "N101", rows, [1, 3, 1, 17, 2])
    assert len(answers) > 20
    for answer in answers[::4] + answers[-1:]:
        whole = client.post("/predict", json={"batch_id": "N101", "rows": rows[: answer["rows"]]})
        assert whole.status_code == 200, whole.text
        assert same_answer(answer, whole.json()), (answer, whole.json())


def test_models_without_a_feature_view_and_with_modes_answer_the_same_too(
    client: TestClient, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    """Harvest: a wrapped model that needs the rows; soft sensor: PLS+assays, whose mode turns
    from online to assays at the batch's first titer assay."""
    fs = FeatureSpec.from_spec(spec)
    anchored = AssayAnchoredModel(PLSModel("soft_sensor", fs))
    anchored.fit(make_samples(training_batches, fs, "soft_sensor"))
    models = {"soft_sensor": anchored, "harvest": BiasedModel(pls["harvest"], 0.1)}
    register_champions(serving_settings, models, training_batches[0].head(12))
    client.post("/admin/reload", headers=AUTH)
    batch = live_batches[2]
    rows = request_rows(batch, spec, 30.0)
    for row in rows[:80]:  # no assays sent for the first rows: online mode
        row["titer_gL"] = None
    answers = follow(client, "N103", rows, [5, 1, 9])
    modes = [a["titer_now"]["mode"] for a in answers]
    assert modes[0] == "online" and modes[-1] == "assays", modes
    for answer in answers[::3]:
        whole = client.post("/predict", json={"batch_id": "N103", "rows": rows[: answer["rows"]]})
        assert same_answer(answer, whole.json()), (answer, whole.json())


@pytest.mark.usefixtures("champions")
def test_online_columns_are_enough(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    offline = {v.column for v in spec.offline}
    rows = [
        {k: v for k, v in row.items() if k not in offline}
        for row in request_rows(live_batches[3], spec, 10.0)
    ]
    assert client.post("/predict", json={"batch_id": "N104", "rows": rows}).status_code == 200
    assert post_rows(client, "N104", 0, rows).status_code == 200


@pytest.mark.usefixtures("champions")
def test_rows_that_do_not_continue_the_batch_are_refused_saying_where_to_continue(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    rows = request_rows(live_batches[4], spec, 12.0)
    assert post_rows(client, "N105", 0, rows[:10]).status_code == 200

    def refused(first: int, block: list[dict[str, Any]], batch_id: str = "N105") -> Any:
        response = post_rows(client, batch_id, first, block)
        body = response.json()
        assert body["error"], body
        return response.status_code, body

    status, body = refused(5, rows[5:12])
    assert status == 409 and "overlap rows 5…9" in body["error"] and body["rows"] == 10
    status, body = refused(12, rows[12:14])
    assert status == 409 and "leave rows 10…11 out" in body["error"]
    status, body = refused(10, [rows[3]])
    assert status == 409 and "not after it" in body["error"]
    assert body["time_h"] == pytest.approx(live_batches[4][TIME].iloc[9])
    status, body = refused(10, [rows[11], rows[10]])
    assert status == 422 and "time goes backwards at row 1" in body["error"]
    status, body = refused(10, [{**rows[10], "batch_id": "N999"}])
    assert status == 422 and "must equal batch_id 'N105'" in body["error"]
    status, body = refused(10, [{**rows[10], "pH": "abc"}])
    assert status == 422 and "pH: row 0: 'abc' is not a number" in body["error"]
    assert refused(0, rows[:2], batch_id="N 1;x")[0] == 422
    assert client.get("/batches/N105").json() == {
        "batch_id": "N105", "rows": 10, "time_h": body["time_h"],
    }  # fmt: skip
    after = post_rows(client, "N105", 10, rows[10:])  # nothing refused was added
    assert after.status_code == 200 and after.json()["rows"] == len(rows)


@pytest.mark.usefixtures("champions")
@pytest.mark.parametrize(
    "body",
    [{"rows": []}, {"first_row": -1, "rows": [{}]}, {"first_row": 0, "rows": "x"}, [1]],
    ids=["no-first-row", "negative", "rows-not-list", "not-an-object"],
)
def test_malformed_bodies_get_422_with_a_message(client: TestClient, body: Any) -> None:
    response = client.post("/batches/N106/rows", json=body)
    assert response.status_code == 422 and response.json()["error"]


def test_a_restarted_service_continues_from_the_stored_rows(
    asgi_app: Any, serving_settings: Settings, champions: dict[Task, str],
    live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    rows = request_rows(live_batches[5], spec, 20.0)
    with TestClient(asgi_app) as client:
        follow(client, "N106", rows[:30], [4])
    with TestClient(asgi_app) as client:  # a new service instance: nothing in memory
        assert client.get("/batches/N106").json()["rows"] == 30
        answer = post_rows(client, "N106", 30, rows[30:40]).json()
        whole = client.post("/predict", json={"batch_id": "N106", "rows": rows[:40]}).json()
        assert same_answer(answer, whole)
        # Rows the service could not store before it stopped are asked for again.
        ended = client.delete("/batches/N106").json()
        assert ended == {"batch_id": "N106", "rows": 40, "time_h": None}
        status = post_rows(client, "N106", 40, rows[40:41])
        assert status.status_code == 409 and status.json()["rows"] == 0
        follow(client, "N106", rows, [25])


def test_evicted_batches_come_back_from_the_stored_rows(
    asgi_app: Any, serving_settings: Settings, champions: dict[Task, str],
    live_batches: list[pd.DataFrame], spec: DatasetSpec, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BIOPROCESSML_SERVING__BATCH_CACHE", "1")
    batches = {str(b["batch_id"].iloc[0]): request_rows(b, spec, 10.0) for b in live_batches[:3]}
    with TestClient(asgi_app) as client:
        sent = dict.fromkeys(batches, 0)
        for _ in range(6):  # round robin: each request evicts the batch before
            for batch_id, rows in batches.items():
                answer = post_rows(client, batch_id, sent[batch_id], rows[sent[batch_id] :][:5])
                assert answer.status_code == 200, answer.text
                sent[batch_id] += 5
        for batch_id, rows in batches.items():
            whole = client.post("/predict", json={"batch_id": batch_id, "rows": rows[:30]})
            assert same_answer(answer.json() if batch_id == "N103" else whole.json(), whole.json())
            assert client.get(f"/batches/{batch_id}").json()["rows"] == 30
    text = generate_latest().decode()
    assert "bioprocessml_batch_rebuilds_total" in text
    assert 'bioprocessml_batch_evictions_total{reason="full"}' in text
