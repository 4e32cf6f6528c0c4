"""A Grafana dashboard over the same series Prometheus scrapes (provisioning files under
`ops/grafana/`). Grafana itself is not run here (Debian has no package for it): the JSON is
generated from `PANELS`, and the tests check that every query parses and returns data in a real
Prometheus, not that Grafana draws it."""

from __future__ import annotations

import json
from typing import Any

from bioprocessml.settings import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "ops" / "grafana" / "dashboards" / "bioprocessml.json"
DATASOURCE = {"type": "prometheus", "uid": "bioprocessml-prometheus"}
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [  # title, kind, [(query, legend)]
    ("Batch files by verdict", "timeseries", [("bioprocessml_batch_files_total", "{{verdict}}")]),
    (
        "Drift alarms",
        "timeseries",
        [
            ("bioprocessml_drift_alarms_total", "{{kind}}"),
            ("bioprocessml_retrain_requests_total", "retrain requests"),
            ("bioprocessml_retrainings_total", "retrainings"),
        ],
    ),
    (
        "Champion error on the newest labelled batch",
        "timeseries",
        [
            ("bioprocessml_champion_batch_rmse", "champion RMSE"),
            ("bioprocessml_naive_batch_rmse", "naive forecast RMSE"),
        ],
    ),
    (
        "95 % interval coverage (recent batches)",
        "timeseries",
        [("bioprocessml_champion_coverage_recent", "coverage")],
    ),
    (
        "Rollout stage",
        "state-timeline",
        [
            (
                "max by (task, stage) (bioprocessml_pipeline_rollout_stage) == 1",
                "{{task}}: {{stage}}",
            )
        ],
    ),
    (
        "Promotions and rollbacks",
        "timeseries",
        [("bioprocessml_rollouts_total", "{{task}} {{outcome}}")],
    ),
    (
        "Predictions per second by route",
        "timeseries",
        [
            (
                "sum by (task, role, route, outcome) (rate(bioprocessml_predictions_total[5m]))",
                "{{task}} {{role}} {{route}} {{outcome}}",
            )
        ],
    ),
    (
        "Prediction latency p95 [s]",
        "timeseries",
        [
            (
                "histogram_quantile(0.95, sum by (le, task, role) (rate(bioprocessml_prediction_seconds_bucket[5m])))",
                "{{task}} {{role}}",
            )
        ],
    ),
    (
        "Hours since the newest batch file",
        "stat",
        [("(time() - bioprocessml_last_batch_timestamp_seconds) / 3600", "hours")],
    ),
    ("Service up", "stat", [('up{job="bioprocessml-service"}', "service")]),
]


def queries() -> list[str]:
    return [query for _, _, targets in PANELS for query, _ in targets]


def dashboard() -> dict[str, Any]:
    panels = []
    for i, (title, kind, targets) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": kind,
                "title": title,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "targets": [
                    {
                        "refId": chr(65 + j),
                        "datasource": DATASOURCE,
                        "expr": q,
                        "legendFormat": legend,
                    }
                    for j, (q, legend) in enumerate(targets)
                ],
            }
        )
    return {
        "uid": "bioprocessml",
        "title": "BioProcessML",
        "schemaVersion": 39,
        "version": 1,
        "tags": ["bioprocessml"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
