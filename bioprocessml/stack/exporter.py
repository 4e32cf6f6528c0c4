"""The pipeline's own Prometheus metrics, read from the stores the chain keeps on every scrape.

Flow runs are short-lived processes Prometheus cannot scrape, but everything they decide is
persisted: the catalogue (accepted / quarantined files), the monitoring records (drift alarms,
retrain requests, the champion's error and interval coverage per batch), the rollout store
(stage, promotions, rollbacks) and the MLflow store (retraining runs). This collector turns those
into series; `bioprocessml exporter` serves them (`up` starts it).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_decision import ACTIVE
from bioprocessml.serving.rollout_store import active_rollouts, transitions
from bioprocessml.settings import Settings
from models.base import TASKS

log = logging.getLogger(__name__)
COVERAGE_WINDOW = 5  # recent labelled batches pooled into the coverage series
MLFLOW_EVERY_S = 30.0


class PipelineCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._retrainings: tuple[float, float] = (0.0, float("nan"))

    def collect(self) -> Iterator[Metric]:
        yield from self._catalogue()
        yield from self._records()
        yield from self._rollouts()
        retrainings = CounterMetricFamily(
            "bioprocessml_retrainings", "Retraining runs logged to MLflow (parent runs)"
        )
        retrainings.add_metric([], self._retraining_count())
        yield retrainings

    def _catalogue(self) -> Iterator[Metric]:
        files = CounterMetricFamily(
            "bioprocessml_batch_files", "Batch files judged, by verdict", labels=["verdict"]
        )
        last = GaugeMetricFamily(
            "bioprocessml_last_batch_timestamp_seconds",
            "When the newest batch file was judged (Unix time)",
        )
        counts = {"accepted": 0, "quarantined": 0}
        newest = 0.0
        path = self.settings.data_dir / "catalogue.db"
        if path.is_file():
            from bioprocessml.ingest.catalogue import Catalogue

            for entry in Catalogue(path).entries():
                counts[entry.verdict] = counts.get(entry.verdict, 0) + 1
                newest = max(newest, entry.received_at.timestamp())
        for verdict, n in counts.items():
            files.add_metric([verdict], n)
        yield files
        if newest:
            last.add_metric([], newest)
        yield last

    def _records(self) -> Iterator[Metric]:
        records = _load_records(self.settings)
        checks = CounterMetricFamily("bioprocessml_drift_checks", "Batches checked for drift")
        checks.add_metric([], len(records))
        alarms = CounterMetricFamily(
            "bioprocessml_drift_alarms", "Drift alarms by kind", labels=["kind"]
        )
        alarms.add_metric(["data"], sum(bool(r.get("data_drift")) for r in records))
        alarms.add_metric(["concept"], sum(bool(r.get("concept_alarm")) for r in records))
        requests = CounterMetricFamily("bioprocessml_retrain_requests", "Retraining requested")
        requests.add_metric([], sum(bool(r.get("requested")) for r in records))
        yield from (checks, alarms, requests)
        labelled = [r for r in records if r.get("batch_rmse") is not None]
        if labelled:
            last = labelled[-1]
            for name, key, words in (
                (
                    "bioprocessml_champion_batch_rmse",
                    "batch_rmse",
                    "Champion RMSE on the newest labelled batch",
                ),
                (
                    "bioprocessml_naive_batch_rmse",
                    "naive_rmse",
                    "Naive forecast RMSE on the same batch",
                ),
            ):
                if last.get(key) is not None:
                    gauge = GaugeMetricFamily(name, words)
                    gauge.add_metric([], float(last[key]))
                    yield gauge
        yield from _coverage(labelled[-COVERAGE_WINDOW:])

    def _rollouts(self) -> Iterator[Metric]:
        engine = engine_for(self.settings.prediction_log_url)
        stage = GaugeMetricFamily(
            "bioprocessml_pipeline_rollout_stage",
            "1 for each task's rollout stage (none when no rollout)",
            labels=["task", "stage"],
        )
        active = active_rollouts(engine)
        for task in TASKS:
            now = active[task].stage if task in active else "none"
            for name in ("none", *ACTIVE):
                stage.add_metric([task, name], 1.0 if name == now else 0.0)
        outcomes = CounterMetricFamily(
            "bioprocessml_rollouts", "Rollouts ended, by outcome", labels=["task", "outcome"]
        )
        done = transitions(engine)
        for task in TASKS:
            for outcome in ("promoted", "rolled_back"):
                n = sum(t.task == task and t.stage == outcome for t in done)
                outcomes.add_metric([task, outcome], n)
        yield from (stage, outcomes)

    def _retraining_count(self) -> float:
        """Parent retraining runs in MLflow, refreshed at most every `MLFLOW_EVERY_S`."""
        at, count = self._retrainings
        if time.monotonic() - at < MLFLOW_EVERY_S:
            return count
        try:
            from mlflow import MlflowClient

            from models.registry import configure

            experiment = configure(self.settings)
            runs = MlflowClient().search_runs(
                [experiment], "attributes.run_name LIKE 'retrain (%'", max_results=10000
            )
            count = float(len(runs))
        except Exception:
            log.exception("counting retraining runs failed")
        self._retrainings = (time.monotonic(), count)
        return count


def _load_records(settings: Settings) -> list[dict[str, Any]]:
    folder = settings.reports_dir
    if not folder.is_dir():
        return []
    records = []
    for path in folder.glob("*.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            log.warning("unreadable monitoring record %s (being written?)", path)
    return sorted(records, key=lambda r: str(r.get("checked_at", "")))


def _coverage(recent: list[dict[str, Any]]) -> Iterator[Metric]:
    """Pooled coverage of the champion's 95 % intervals over the recent labelled batches."""
    points = sum(int(r.get("coverage_points") or 0) for r in recent)
    if not points:
        return
    inside = sum(
        float(r["coverage"]) * int(r["coverage_points"])
        for r in recent
        if r.get("coverage") is not None
    )
    share = GaugeMetricFamily(
        "bioprocessml_champion_coverage_recent",
        f"Share of assays inside the champion's 95 % interval, last {COVERAGE_WINDOW} labelled batches",
    )
    share.add_metric([], inside / points)
    count = GaugeMetricFamily(
        "bioprocessml_champion_coverage_points_recent",
        "Assays behind bioprocessml_champion_coverage_recent",
    )
    count.add_metric([], points)
    yield from (share, count)


def serve_exporter(settings: Settings, host: str = "127.0.0.1") -> Any:
    """Serve the collector on `observability.exporter_port` (a daemon thread); returns the server."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry()
    registry.register(PipelineCollector(settings))
    server, _ = start_http_server(settings.observability.exporter_port, host, registry)
    return server
