"""Every endpoint of the BentoML service, in process (ASGI test client)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from bioprocessml.serving import rollout
from bioprocessml.serving.request import canary_bucket, request_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from models.biased import BiasedModel
from models.registry import CHAMPION, PREVIOUS, alias_version
from tests.serving.conftest import (
    AUTH,
    Broken,
    logged,
    register_champions,
    register_model,
    wait_for_rows,
)


def rows_of(batch: pd.DataFrame, spec: DatasetSpec, upto_h: float = 24.0) -> list[dict[str, Any]]:
    return request_rows(batch, spec, upto_h)


@pytest.fixture
def champions(
    serving_settings: Settings, pls: dict[Task, Any], training_batches: list[pd.DataFrame]
) -> dict[Task, str]:
    return register_champions(serving_settings, pls, training_batches[0].head(12))


def test_without_champion_predict_is_503_and_not_ready(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    response = client.post(
        "/predict", json={"batch_id": "N101", "rows": rows_of(live_batches[0], spec)}
    )
    assert response.status_code == 503
    assert "champion yet" in response.json()["error"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/livez").status_code == 200


@pytest.mark.usefixtures("champions")
def test_predict_answers_both_titers_with_intervals_and_logs_them(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec,
    serving_settings: Settings,
) -> None:  # fmt: skip
    batch = live_batches[0]
    response = client.post("/predict", json={"batch_id": "N101", "rows": rows_of(batch, spec, 30)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["batch_id"] == "N101" and body["time_h"] == pytest.approx(30.0, abs=0.2)
    for key, name in [("titer_now", "bioprocess-soft-sensor"),
                      ("titer_at_harvest", "bioprocess-harvest-forecast")]:  # fmt: skip
        answer = body[key]
        assert answer["lower"] < answer["mean"] < answer["upper"]
        assert (answer["model"], answer["version"], answer["route"]) == (name, "1", "champion")
        assert answer["unit"] == "g/L"
    # The soft sensor tracks the batch's titer at 30 h (assays at 24 h and 36 h bracket it).
    assays = batch.dropna(subset=["titer"])
    truth = float(pd.Series(assays["titer"].values, assays["time"].values).sort_index()
                  .reindex([24.0, 36.0], method="nearest").mean())  # fmt: skip
    assert abs(body["titer_now"]["mean"] - truth) < 1.0
    assert client.get("/readyz").status_code == 200

    log = wait_for_rows(serving_settings, 2)  # written after the answer, in the background
    assert len(log) == 2 and set(log["task"]) == {"soft_sensor", "harvest"}
    assert log["served"].all() and (log["request_id"] == body["request_id"]).all()
    assert set(log["route"]) == {"champion"} and log["error"].isna().all()


def test_a_task_without_champion_answers_null_with_the_gate_reason(
    client: TestClient, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    """The harvest candidates did not beat the naive forecast: no harvest champion. Titer now is
    still served; the harvest answer is null and says why, and the service is ready."""
    from models.retraining import GateOutcome, record_gate

    register_champions(
        serving_settings, {"soft_sensor": pls["soft_sensor"]}, training_batches[0].head(12)
    )
    record_gate("harvest", GateOutcome(
        decision="rejected", candidate="pls", task="harvest",
        reason="RMSE 2.9 does not beat the naive forecast's 2.8 (what past batches say)",
    ))  # fmt: skip
    client.post("/admin/reload", headers=AUTH)
    response = client.post(
        "/predict", json={"batch_id": "N101", "rows": rows_of(live_batches[0], spec)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["titer_now"]["version"] == "1" and body["titer_at_harvest"] is None
    assert "does not beat the naive forecast" in body["unavailable"]["titer_at_harvest"]
    assert client.get("/readyz").status_code == 200


@pytest.mark.usefixtures("champions")
def test_answers_stay_within_the_targets_physical_range(
    client: TestClient, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    """A concentration is never negative: a model that says −5 g/L is served as 0 at most."""
    register_champions(serving_settings, {t: BiasedModel(m, -50.0) for t, m in pls.items()},
                       training_batches[0].head(12))  # fmt: skip
    client.post("/admin/reload", headers=AUTH)
    body = client.post(
        "/predict", json={"batch_id": "N101", "rows": rows_of(live_batches[0], spec, 2)}
    ).json()
    for key in ("titer_now", "titer_at_harvest"):
        assert body[key]["version"] == "2"
        assert 0.0 == body[key]["lower"] <= body[key]["mean"] <= body[key]["upper"]


@pytest.mark.usefixtures("champions")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: [{**r, "temp": 1} for r in rows], "unknown columns ['temp']"),
        (lambda rows: [{k: v for k, v in r.items() if k != "pH"} for r in rows],
         "required columns missing"),
        (lambda rows: [{**r, "pH": "abc"} if i == 3 else r for i, r in enumerate(rows)],
         "pH: row 3: 'abc' is not a number"),
        (lambda rows: rows[::-1], "time goes backwards"),
        (lambda rows: [{**r, "temperature_C": 80.0} for r in rows], "outside the plausible range"),
        (lambda rows: [{**r, "batch_id": "OTHER"} for r in rows], "must equal batch_id"),
        (lambda rows: [], "send 1 to"),
    ],
    ids=["unknown", "missing", "text", "backwards", "range", "id", "empty"],
)  # fmt: skip
def test_bad_rows_get_422_with_the_reason(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec, change: Any,
    message: str,
) -> None:  # fmt: skip
    rows = change(rows_of(live_batches[0], spec))
    response = client.post("/predict", json={"batch_id": "N101", "rows": rows})
    assert response.status_code == 422
    assert message in response.json()["error"]


@pytest.mark.usefixtures("champions")
@pytest.mark.parametrize(
    "body",
    [{"rows": []}, {"batch_id": "N101", "rows": "x"}, {"batch_id": "../x", "rows": [{}]}],
    ids=["no-id", "rows-not-list", "bad-id"],
)
def test_malformed_requests_get_4xx_never_500(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/predict", json=body)
    assert 400 <= response.status_code < 500
    assert response.json()["error"]


def test_admin_needs_the_bearer_token(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload").headers["www-authenticate"] == "Bearer"
    wrong = client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["detail"] == "wrong admin token"
    assert client.get("/admin/status", headers=AUTH).status_code == 200
    stage = client.post("/admin/stage", json={"task": "harvest", "stage": "canary"}, headers=AUTH)
    assert stage.status_code == 409 and "no active rollout" in stage.json()["detail"]


def test_admin_is_off_without_a_configured_token(
    serving_settings: Settings, asgi_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BIOPROCESSML_SERVING__ADMIN_TOKEN")
    with TestClient(asgi_app) as client:
        response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 403 and "admin endpoints are off" in response.json()["detail"]


def test_openapi_documents_predict_and_admin(client: TestClient) -> None:
    paths = client.get("/docs.json").json()["paths"]
    assert "/predict" in paths
    assert client.get("/admin/openapi.json").json()["paths"].keys() >= {"/reload", "/stage"}


def test_shadow_then_canary_then_promotion_switches_without_restart(
    client: TestClient, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    example = training_batches[0].head(12)
    register_champions(serving_settings, {t: BiasedModel(m, 0.5) for t, m in pls.items()}, example)
    challenger = register_model(serving_settings, pls["soft_sensor"], example)
    rollout.begin(serving_settings, "soft_sensor", challenger, "test")
    assert client.post("/admin/reload", headers=AUTH).json()["tasks"]["soft_sensor"] == {
        "champion": "1", "challenger": "2", "stage": "shadow",
    }  # fmt: skip

    # Shadow: the champion answers, the challenger's answer is only logged.
    batch = live_batches[0]
    body = client.post("/predict", json={"batch_id": "N101", "rows": rows_of(batch, spec)}).json()
    assert body["titer_now"]["version"] == "1" and body["titer_now"]["route"] == "champion"
    log = wait_for_rows(serving_settings, 3)
    shadow = log[log["role"] == "challenger"].iloc[0]
    assert (shadow["model_version"], bool(shadow["served"])) == ("2", False)
    assert shadow["request_id"] == body["request_id"]

    # Canary: a stable share of batches gets the challenger's answer, always the same ones.
    client.post("/admin/stage", json={"task": "soft_sensor", "stage": "canary"}, headers=AUTH)
    share = serving_settings.rollout.canary_share
    ids = [f"C{i:03d}" for i in range(40)]
    for batch_id in ids:
        rows = [{**r, "batch_id": batch_id} for r in rows_of(batch, spec, 6)]
        for _ in range(2):
            answer = client.post("/predict", json={"batch_id": batch_id, "rows": rows}).json()
            expected = "canary" if canary_bucket(batch_id) < share else "champion"
            assert answer["titer_now"]["route"] == expected
            assert answer["titer_now"]["version"] == ("2" if expected == "canary" else "1")
            assert answer["titer_at_harvest"]["route"] == "champion"
    assert 0 < sum(canary_bucket(i) < share for i in ids) < len(ids)

    # Promotion moves the aliases; the running service answers with the new champion.
    client.post("/admin/stage", json={"task": "soft_sensor", "stage": "promoted"}, headers=AUTH)
    assert str(alias_version("soft_sensor", CHAMPION).version) == "2"  # type: ignore[union-attr]
    assert str(alias_version("soft_sensor", PREVIOUS).version) == "1"  # type: ignore[union-attr]
    body = client.post("/predict", json={"batch_id": "N101", "rows": rows_of(batch, spec)}).json()
    assert (body["titer_now"]["version"], body["titer_now"]["route"]) == ("2", "champion")


def test_failing_challenger_falls_back_and_is_rolled_back(
    asgi_app: Any, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("BIOPROCESSML_ROLLOUT__MIN_REQUESTS_FOR_ERROR_RATE", "3")
    example = training_batches[0].head(12)
    register_champions(serving_settings, pls, example)
    broken = register_model(serving_settings, Broken(pls["harvest"], 0.0), example)
    rollout.begin(serving_settings, "harvest", broken, "test")
    with TestClient(asgi_app) as client:
        client.post("/admin/stage", json={"task": "harvest", "stage": "canary"}, headers=AUTH)
        canary_id = next(f"F{i:03d}" for i in range(100) if canary_bucket(f"F{i:03d}") < 0.2)
        rows = [{**r, "batch_id": canary_id} for r in rows_of(live_batches[1], spec)]
        for _ in range(3):
            response = client.post("/predict", json={"batch_id": canary_id, "rows": rows})
            assert response.status_code == 200  # the champion's answer, never a failed request
            assert response.json()["titer_at_harvest"]["version"] == "1"
        status = client.get("/admin/status", headers=AUTH).json()
    assert status["tasks"]["harvest"] == {"champion": "1", "challenger": None, "stage": None}
    failures = logged(serving_settings).dropna(subset=["error"])
    assert len(failures) == 3 and failures["error"].str.contains("broken on purpose").all()
    text = generate_latest().decode()
    assert 'outcome="failed",role="challenger"' in text.replace('route="canary",', "")
