"""The service as users run it: a real `bentoml serve` process, under load while a challenger is
promoted and another is rolled back; and `bentoml build` of bentofile.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from bioprocessml.serving import rollout
from bioprocessml.serving.request import request_rows
from bioprocessml.settings import PROJECT_ROOT, Settings
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack.loadgen import LoadGenerator
from bioprocessml.stack.servers import BIN, down, free_port, start_service
from models.biased import BiasedModel
from tests.integration.conftest import wait_until
from tests.serving.conftest import TOKEN, register_champions, register_model

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def admin(settings: Settings, route: str, body: dict[str, Any] | None = None) -> Any:
    url = f"{settings.serving.url}/admin/{route}"
    response = (
        httpx.post(url, json=body, headers=AUTH, timeout=60)
        if body
        else httpx.get(url, headers=AUTH, timeout=60)
    )
    response.raise_for_status()
    return response.json()


def test_switches_under_load_fail_no_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pls: dict[str, Any],
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    for key, value in {
        "STATE_DIR": str(tmp_path / "state"), "DATA_DIR": str(tmp_path / "data"),
        "SERVING__ADMIN_TOKEN": TOKEN, "SERVING__PORT": str(free_port()),
        "SERVING__POLL_SECONDS": "1",
    }.items():  # fmt: skip
        monkeypatch.setenv(f"BIOPROCESSML_{key}", value)
    settings = Settings().prepare()
    example = training_batches[0].head(12)
    register_champions(settings, pls, example)
    better = register_model(settings, pls["soft_sensor"], example)
    weak = register_model(settings, BiasedModel(pls["soft_sensor"], 1.0), example)
    payloads = [
        {"batch_id": str(b["batch_id"].iloc[0]), "rows": request_rows(b, spec, cut)}
        for b in live_batches[:6]
        for cut in (12.0, 24.0, 36.0)
    ]
    start_service(settings)
    try:
        wait_until(lambda: httpx.get(f"{settings.serving.url}/readyz").status_code == 200,
                   timeout=60, what="service ready")  # fmt: skip
        load = LoadGenerator(settings.serving.url, lambda i: payloads[i % len(payloads)]).start()
        time.sleep(2)
        # --- promotion: shadow → canary → promoted, while requests keep coming ---
        rollout.begin(settings, "soft_sensor", better, "load test")
        time.sleep(2)
        admin(settings, "stage", {"task": "soft_sensor", "stage": "canary"})
        time.sleep(2)
        admin(settings, "stage", {"task": "soft_sensor", "stage": "promoted"})
        time.sleep(3)
        # --- rollback: a weak challenger in canary, rolled back the way the CLI does it ---
        rollout.begin(settings, "soft_sensor", weak, "weak on purpose")
        admin(settings, "stage", {"task": "soft_sensor", "stage": "canary"})
        time.sleep(2)
        rollout.roll_back(settings, "soft_sensor", "load test")
        time.sleep(3)
        report = load.stop()
        status = admin(settings, "status")
        metrics = httpx.get(f"{settings.serving.url}/metrics").text
    finally:
        down(settings)
    (tmp_path / "load.json").write_text(report.model_dump_json(indent=2))
    print(f"load test: {report.model_dump_json()} ({report.rate:.1f} req/s)")
    assert report.failed == 0, report.failures
    assert report.sent > 50
    assert (
        report.versions.get("soft_sensor:1", 0) > 0 and report.versions.get("soft_sensor:2", 0) > 0
    )
    assert status["tasks"]["soft_sensor"] == {"champion": better, "challenger": None, "stage": None}
    assert f'model_version="{better}"' in metrics and "bioprocessml_predictions_total" in metrics
    assert "bioprocessml_shadow_disagreement_bucket" in metrics
    assert "bioprocessml_prediction_seconds_bucket" in metrics


def test_bentoml_build_packs_the_service(tmp_path: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    done = subprocess.run(
        [str(BIN / "bentoml"), "build", "--output", "tag"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    listed = subprocess.run(
        [str(BIN / "bentoml"), "list", "-o", "json"], env=env, capture_output=True, text=True
    )  # fmt: skip
    bentos = json.loads(listed.stdout)
    assert [b["tag"].split(":")[0] for b in bentos] == ["bioprocessml"]
    source = next((tmp_path / "bentoml" / "bentos" / "bioprocessml").glob("*/src"))
    assert (source / "service.py").is_file() and (source / "data/datasets/fedbatch.yaml").is_file()
