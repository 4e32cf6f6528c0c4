"""The plant page in a real browser: the service on a real port (uvicorn), headless Chromium
waits for the chart, then the test reads what a person would see."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from bioprocessml.ingest.catalogue import Catalogue, Entry
from bioprocessml.serving.request import request_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from monitoring.history import DriftRecord, save_record
from tests.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium
from tests.serving.conftest import register_champions

pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason=MISSING)


@pytest.fixture
def served(
    serving_settings: Settings, asgi_app: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    import uvicorn

    monkeypatch.setenv("BIOPROCESSML_REPORTS_DIR", str(tmp_path / "reports"))
    port = serving_settings.serving.port
    server = uvicorn.Server(
        uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def test_plant_page_shows_batches_band_assays_models_alarms_and_reasons(
    served: str,
    serving_settings: Settings,
    pls: dict[Task, Any],
    spec: DatasetSpec,
    training_batches: list[pd.DataFrame],
    live_batches: list[pd.DataFrame],
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    versions = register_champions(serving_settings, pls, training_batches[0].head(12))
    httpx.post(
        f"{served}/admin/reload", headers={"Authorization": "Bearer test-admin-token"}, timeout=60
    )
    batch = live_batches[3]
    for upto in (6.0, 12.0, 18.0, 24.0, 30.0, 36.0):
        answer = httpx.post(
            f"{served}/predict",
            json={"batch_id": "N104", "rows": request_rows(batch, spec, upto)},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
    Catalogue(serving_settings.data_dir / "catalogue.db").add(
        Entry(
            file="C003-time-out-of-order.csv",
            sha256="c" * 64,
            size=10,
            verdict="quarantined",
            reasons=["time_h: time goes backwards at row 17"],
        )
    )
    save_record(
        tmp_path / "reports",
        DriftRecord(
            batch_id="N099",
            data_drift=True,
            requested=True,
            kind="data",
            reasons=["temperature_C: late-phase mean beyond its limits"],
        ),
    )
    assays = batch[batch["time"] <= 36.0].dropna(subset=["titer"])
    with chromium() as driver:
        driver.get(f"{served}/ui/")
        WebDriverWait(driver, 60).until(
            lambda d: d.find_element(By.ID, "chart").get_attribute("data-ready") == "true"
        )
        chart = driver.find_element(By.ID, "chart")
        assert chart.get_attribute("data-batch") == "N104"
        assert len(chart.find_elements(By.CSS_SELECTOR, "circle.assay")) == len(assays) > 0
        assert len(chart.find_elements(By.CSS_SELECTOR, "path.band")) == 1
        mean = chart.find_element(By.CSS_SELECTOR, "polyline.mean").get_attribute("points")
        assert len(mean.split()) == 6
        assert chart.find_elements(By.CSS_SELECTOR, "circle.harvest-dot")
        facts = driver.find_element(By.ID, "batch-facts").text
        assert "N104 (running)" in facts and "harvest forecast" in facts and "g/L" in facts
        models = driver.find_element(By.ID, "models").text
        assert f"v{versions['soft_sensor']}" in models and "none" in models
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#why tr.attribution")
        )
        why = driver.find_element(By.ID, "why").text
        assert "N104" in why and "average batch" in why and "[" in why
        assert "time goes backwards" in driver.find_element(By.ID, "quarantines").text
        assert "late-phase mean beyond its limits" in driver.find_element(By.ID, "alarms").text
        links = {
            a.text: a.get_attribute("href")
            for a in driver.find_elements(By.CSS_SELECTOR, "#links a")
        }
        assert {"Prefect", "MLflow", "Evidently", "Prometheus"} <= set(links)
        driver.save_screenshot(str(tmp_path / "plant-page.png"))
    assert (tmp_path / "plant-page.png").stat().st_size > 10_000
