"""Prometheus with the project's rules: `promtool` accepts them and their unit tests pass; a real
Prometheus scrapes the pipeline exporter and the prediction service, and an alert fires when a
rollback happens. Skipped, saying why, where Debian's `prometheus` package is not installed
(`.ci/run` installs it)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bioprocessml.serving import rollout
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_decision import Decision
from bioprocessml.serving.rollout_store import start_rollout
from bioprocessml.settings import Observability, Serving, Settings
from bioprocessml.stack import grafana, prometheus
from bioprocessml.stack.exporter import serve_exporter
from bioprocessml.stack.servers import free_port
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.skipif(
    prometheus.binary() is None or prometheus.binary("promtool") is None,
    reason=f"{prometheus.MISSING}; .ci/run installs it",
)


def test_rules_pass_promtool_and_the_committed_copy_is_current(tmp_path: Path) -> None:
    config = prometheus.write_config(Settings(), tmp_path)
    for args in (
        ("check", "rules", str(tmp_path / "alerts.yml")),
        ("check", "config", str(config)),
    ):
        done = prometheus.promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    assert prometheus.COMMITTED_RULES.read_text() == (tmp_path / "alerts.yml").read_text()
    tested = prometheus.promtool(
        "test", "rules", str(prometheus.COMMITTED_RULES.with_name("alerts_test.yml"))
    )
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    assert grafana.DASHBOARD.read_text() == grafana.render()


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory, stack: Settings
) -> Iterator[tuple[Settings, str]]:
    """A pipeline state folder, its exporter (in this process) and a Prometheus scraping it and
    the session stack's real prediction service, every second."""
    root = tmp_path_factory.mktemp("observed")
    settings = Settings(
        state_dir=root / "state",
        data_dir=root / "data",
        reports_dir=root / "reports",
        serving=Serving(port=stack.serving.port),
        observability=Observability(
            exporter_port=free_port(), prometheus_port=free_port(), scrape_seconds=1.0
        ),
    ).prepare()
    exporter = serve_exporter(settings)
    folder = root / "prometheus"
    prometheus.write_config(settings, folder)
    log = (root / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        prometheus.command(settings, folder),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{settings.observability.prometheus_port}"
    try:
        wait_until(lambda: _ok(f"{url}/-/ready"), timeout=60, what="Prometheus ready")
        yield settings, url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        exporter.shutdown()
        log.close()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def firing(url: str, name: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_a_rollback_fires_the_alert_in_a_real_prometheus(observed: tuple[Settings, str]) -> None:
    settings, url = observed
    rolled_back = 'bioprocessml_rollouts_total{task="soft_sensor",outcome="rolled_back"}'
    wait_until(
        lambda: query(url, f"count_over_time({rolled_back}[1m]) >= 2"),
        timeout=60,
        what="two scrapes before the rollback",
    )
    assert float(query(url, rolled_back)[0]["value"][1]) == 0.0
    assert not firing(url, "RolloutRolledBack")
    state = start_rollout(engine_for(settings.prediction_log_url), "soft_sensor", "1", "2", "test")
    rollout.apply(
        settings,
        state,
        Decision(stage="rolled_back", reason="worse than the champion"),
        "N777",
        notify=False,
    )
    [alert] = wait_until(lambda: firing(url, "RolloutRolledBack"), timeout=90, what="the alert")
    assert alert["labels"]["task"] == "soft_sensor"
    assert float(query(url, rolled_back)[0]["value"][1]) == 1.0
    assert query(url, 'bioprocessml_pipeline_rollout_stage{task="soft_sensor",stage="none"} == 1')
    for job in ("bioprocessml-service", "bioprocessml-pipeline"):
        assert float(query(url, f'up{{job="{job}"}}')[0]["value"][1]) == 1.0
    # The service's own series (its rollout-stage gauge is set at every model reload).
    assert query(url, 'bioprocessml_rollout_stage{job="bioprocessml-service"}')


def test_every_grafana_query_is_valid_promql(observed: tuple[Settings, str]) -> None:
    _, url = observed
    for expr in grafana.queries():
        query(url, expr)  # asserts status success (a syntax error is status error)
