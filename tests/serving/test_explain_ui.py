"""`/explain`, the plant page's JSON and assets, and the OpenAPI description, in process."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient

from bioprocessml.serving.request import request_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from tests.serving.conftest import register_champions, wait_for_rows


@pytest.fixture
def champions(
    serving_settings: Settings, pls: dict[Task, Any], training_batches: list[pd.DataFrame]
) -> dict[Task, str]:
    return register_champions(serving_settings, pls, training_batches[0].head(12))


def body(batch: pd.DataFrame, spec: DatasetSpec, upto_h: float) -> dict[str, Any]:
    return {"batch_id": str(batch["batch_id"].iloc[0]), "rows": request_rows(batch, spec, upto_h)}


@pytest.mark.usefixtures("champions")
def test_explain_adds_up_to_the_predict_answer_in_spec_columns(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    request = body(live_batches[0], spec, 30.0)
    answer = client.post("/predict", json=request).json()
    explained = client.post("/explain", json=request)
    assert explained.status_code == 200, explained.text
    columns = {v.column: v.unit for v in spec.variables} | {spec.time.column: spec.time.unit}
    for field in ("titer_now", "titer_at_harvest"):
        task = explained.json()[field]
        e = task["explanation"]
        assert task["version"] == answer[field]["version"] and task["error"] is None
        assert e["prediction"] == pytest.approx(answer[field]["mean"], abs=1e-9)
        total = e["base_value"] + sum(a["contribution"] for a in e["attributions"])
        assert total == pytest.approx(e["prediction"], abs=1e-6)
        assert e["attributions"] and all(
            columns[a["column"]] == a["unit"] for a in e["attributions"]
        )
        assert "LinearExplainer" in e["method"]
    bad = dict(request, rows=[dict(request["rows"][0], pH="acid")])
    assert client.post("/explain", json=bad).status_code == 422


@pytest.mark.usefixtures("champions")
def test_overview_shows_batches_models_and_the_latest_answers_attributions(
    client: TestClient, live_batches: list[pd.DataFrame], spec: DatasetSpec,
    serving_settings: Settings,
) -> None:  # fmt: skip
    for upto in (8.0, 16.0, 24.0, 40.0):
        assert client.post("/predict", json=body(live_batches[1], spec, upto)).status_code == 200
    client.post("/predict", json=body(live_batches[2], spec, 12.0))
    wait_for_rows(serving_settings, 10)  # the log is written in the background
    view = client.get("/ui/api/overview").json()
    assert [b["batch_id"] for b in view["batches"]][:2] == ["N103", "N102"]
    running = view["batches"][1]
    assert running["status"] == "running" and [p["time_h"] for p in running["titer_now"]] == [
        8.0, 16.0, 24.0, 40.0,
    ]  # fmt: skip
    assert all(p["lower"] <= p["mean"] <= p["upper"] for p in running["titer_now"])
    assays = live_batches[1].dropna(subset=["titer"])
    expected = [[t, y] for t, y in zip(assays["time"], assays["titer"], strict=True) if t <= 40.0]
    assert len(running["assays"]) == len(expected) == 4
    for got, want in zip(running["assays"], expected, strict=True):
        assert got == pytest.approx(want)
    assert running["harvest"] is not None
    assert view["models"]["soft_sensor"]["champion"] == "1"
    assert view["models"]["soft_sensor"]["stage"] == "none"
    why = view["explanation"]
    assert why["batch_id"] == "N103" and why["titer_now"]["top"]
    assert set(view["links"]) >= {"Prefect", "MLflow", "Evidently", "Prometheus"}


def test_page_and_assets_are_served_from_the_package_without_a_cdn(client: TestClient) -> None:
    page = client.get("/ui/")
    assert page.status_code == 200 and '<svg id="chart"' in page.text
    for asset in re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text):
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 500
        assert not re.search(r"https?://", response.text.replace("http://www.w3.org/2000/svg", ""))
    assert len(re.findall(r'(?:src|href)="(/ui/static/[^"]+)"', page.text)) == 2


def test_openapi_describes_this_service(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    assert "BioProcessML prediction service" in spec["info"]["description"]
    assert "created with BentoML" not in spec["info"]["description"]
    assert {"/predict", "/explain"} <= set(spec["paths"])
