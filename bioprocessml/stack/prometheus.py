"""Prometheus for the embedded stack: its configuration, the alert rules, and the process.

Prometheus scrapes the BentoML service's `/metrics` (predictions by model version, role, route
and outcome; latency; rollout stage) and the pipeline exporter (`bioprocessml.stack.exporter`).
The rules are rendered from the settings (coverage bounds, the error-rate limit of a rollout, the
hours without a batch) into `<state_dir>/prometheus/`; `ops/prometheus/alerts.yml` is the same
rendering with the default settings. There is no Alertmanager here: alerts show on Prometheus'
`/alerts` page and API; the chain's own notifications go through Prefect automations.
Debian's `prometheus` package provides the binaries; without them `up` says so and goes on.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from bioprocessml.settings import PROJECT_ROOT, Settings

SERVICE_JOB, PIPELINE_JOB = "bioprocessml-service", "bioprocessml-pipeline"
COMMITTED_RULES = PROJECT_ROOT / "ops" / "prometheus" / "alerts.yml"
MISSING = "prometheus is not installed (Debian: apt-get install prometheus)"


def alerts_page(port: int) -> str:
    """The alerts page of the Prometheus on `port`: `/alerts`, or `/classic/alerts` in Debian's
    build (it ships only the classic UI; `/alerts` answers 404 there)."""
    import httpx

    url = f"http://127.0.0.1:{port}"
    try:
        if httpx.get(f"{url}/alerts", timeout=2).status_code == 404:
            return f"{url}/classic/alerts"
    except httpx.HTTPError:
        pass  # not running (yet): the upstream path
    return f"{url}/alerts"


def binary(name: str = "prometheus") -> str | None:
    return shutil.which(name)


def _alert(
    name: str, expr: str, summary: str, for_: str = "0s", severity: str = "warning"
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def alert_rules(settings: Settings) -> dict[str, Any]:
    low, high = settings.thresholds.coverage_bounds
    rate = settings.rollout.max_error_rate
    hours = settings.observability.no_batch_hours
    challenger = 'bioprocessml_predictions_total{role="challenger"}'
    failed = 'bioprocessml_predictions_total{role="challenger",outcome="failed"}'
    rules = [
        _alert(
            "RolloutRolledBack",
            'increase(bioprocessml_rollouts_total{outcome="rolled_back"}[30m]) > 0',
            "{{ $labels.task }}: a challenger was rolled back",
        ),
        _alert(
            "DriftAlarm",
            "increase(bioprocessml_drift_alarms_total[1h]) > 0",
            "{{ $labels.kind }} drift alarm on a new batch",
        ),
        _alert(
            "ChallengerErrorRate",
            f"sum by (task) (rate({failed}[10m])) / sum by (task) (rate({challenger}[10m])) > {rate}",
            f"{{{{ $labels.task }}}}: more than {rate:.0%} of the challenger's predictions fail",
            for_="1m",
            severity="critical",
        ),
        _alert(
            "CoverageTooLow",
            f"bioprocessml_champion_coverage_recent < {low} and bioprocessml_champion_coverage_points_recent >= 10",
            f"the champion's 95 % intervals cover fewer than {low:.0%} of recent assays",
        ),
        _alert(
            "CoverageTooHigh",
            f"bioprocessml_champion_coverage_recent > {high} and bioprocessml_champion_coverage_points_recent >= 60",
            f"the champion's 95 % intervals cover more than {high:.0%} of recent assays (too wide)",
        ),
        _alert(
            "NoBatchArrived",
            f"time() - bioprocessml_last_batch_timestamp_seconds > {hours * 3600:g}",
            f"no batch file for more than {hours:g} h",
        ),
        _alert(
            "ServiceDown",
            f'up{{job="{SERVICE_JOB}"}} == 0',
            "the prediction service does not answer",
            for_="1m",
            severity="critical",
        ),
        _alert(
            "PipelineExporterDown",
            f'up{{job="{PIPELINE_JOB}"}} == 0',
            "the pipeline exporter does not answer",
            for_="1m",
        ),
    ]
    return {"groups": [{"name": "bioprocessml", "rules": rules}]}


def prometheus_config(settings: Settings, rules_file: str = "alerts.yml") -> dict[str, Any]:
    every = f"{settings.observability.scrape_seconds:g}s"
    service = urlparse(settings.serving.url).netloc
    exporter = f"127.0.0.1:{settings.observability.exporter_port}"
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": [rules_file],
        "scrape_configs": [
            {"job_name": SERVICE_JOB, "static_configs": [{"targets": [service]}]},
            {"job_name": PIPELINE_JOB, "static_configs": [{"targets": [exporter]}]},
        ],
    }


def render(text: dict[str, Any]) -> str:
    return yaml.safe_dump(text, sort_keys=False, width=120)


def write_config(settings: Settings, folder: Path) -> Path:
    """prometheus.yml and alerts.yml into `folder`; returns the config's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alerts.yml").write_text(render(alert_rules(settings)))
    config = folder / "prometheus.yml"
    config.write_text(render(prometheus_config(settings)))
    return config


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = binary("promtool")
    if tool is None:
        raise FileNotFoundError(MISSING)
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def command(settings: Settings, folder: Path) -> list[str]:
    """The Prometheus command line for a config in `folder` (data kept there too)."""
    tool = binary()
    if tool is None:
        raise FileNotFoundError(MISSING)
    return [
        tool,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.observability.prometheus_port}",
        "--storage.tsdb.retention.time=15d",
        "--web.enable-lifecycle",
    ]
