"""Pace of the chain on the dev set, in one run of the live stack: Prefect's bare event →
flow-run latency (a no-op probe deployment), then per batch arrival → verdict and verdict →
drift record with each stage's own work (its flow run's duration), one batch every `--every` s;
then a burst of `--burst` files; and the gate's validation time per file in process.

    .venv/bin/python benchmarks/pace.py --spec data/datasets/indpensim.yaml [--every 10]
        [--dev ../shared/datasets/indpensim-dev] [--probes 5] [--burst 30] [--executor runner]

Retraining is off (bootstrap after 10,000 batches): the per-batch monitoring is measured, not a
model fit competing for the two cores. Writes benchmarks/results/pace.json and prints a summary.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from devset import dev_files, find_dev_set

from bioprocessml.events import STACK_PROBE, ProbePayload, post_event
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.ingest.validation import validate_file
from bioprocessml.settings import PROJECT_ROOT, Runtime, Settings, Thresholds, disable_telemetry
from bioprocessml.spec import load_spec
from bioprocessml.stack.servers import down, free_port, up
from monitoring.history import record_path

RESULTS = Path(__file__).parent / "results" / "pace.json"


def wait_until(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except httpx.TimeoutException:  # a stalled server is a result to measure, not a crash
            print(
                f"  the Prefect API did not answer in time while waiting for {what}; asking again"
            )
            continue
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"waited {timeout:.0f} s for {what}")


def flow_runs(settings: Settings, deployment: str) -> list[dict[str, Any]]:
    body = {"deployments": {"name": {"any_": [deployment]}}, "limit": 200}
    response = httpx.post(f"{settings.prefect_api_url}/flow_runs/filter", json=body, timeout=30)
    response.raise_for_status()
    return list(response.json())


def seconds(a: str | None, b: str | None) -> float | None:
    if a is None or b is None:
        return None
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def runs_of(settings: Settings, deployment: str, key: str, value: str) -> list[dict[str, Any]]:
    """The flow runs of a deployment whose parameter `key` (dotted) equals `value`."""
    matching = []
    for run in flow_runs(settings, deployment):
        found: Any = run["parameters"]
        for part in key.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        if found == value:
            matching.append(run)
    return matching


def completed_run(
    settings: Settings, deployment: str, key: str, value: str, timeout: float
) -> dict[str, Any]:
    """Wait for the completed run; a timeout names the states its runs are in."""

    def done() -> dict[str, Any] | None:
        runs = runs_of(settings, deployment, key, value)
        return next((r for r in runs if r["state_type"] == "COMPLETED"), None)

    try:
        return wait_until(done, timeout, f"the completed {deployment} run of {value}")
    except TimeoutError as exc:
        states = [(r["name"], r["state_type"]) for r in runs_of(settings, deployment, key, value)]
        raise TimeoutError(f"{exc}; its runs: {states or 'none'}") from exc


def probe_latency(settings: Settings, n: int) -> list[float]:
    """Event sent → probe flow run started, n times, one at a time."""
    latencies = []
    for _ in range(n):
        sent = datetime.now(UTC).isoformat()
        resource = {"prefect.resource.id": "bioprocess.stack.pace"}
        post_event(settings.prefect_api_url, STACK_PROBE, resource, ProbePayload(sent=sent),
                   str(uuid.uuid4()))  # fmt: skip
        run = completed_run(settings, "on-probe", "sent", sent, 120)
        latencies.append(seconds(sent, run["start_time"]) or 0.0)
    return latencies


def drop(path: Path, incoming: Path) -> str:
    partial = incoming / f"{path.name}.part"
    partial.write_bytes(path.read_bytes())
    partial.rename(incoming / path.name)
    return datetime.now(UTC).isoformat()


def measure_batch(settings: Settings, path: Path, dropped: str) -> dict[str, Any]:
    """Times of one batch, from the catalogue, the drift record and the two flow runs."""
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    entry = wait_until(lambda: next((e for e in catalogue.entries() if e.file == path.name), None),
                       900, f"verdict of {path.name}")  # fmt: skip
    arrival = next(a for a in catalogue.arrivals() if a.file == path.name)
    row: dict[str, Any] = {"file": path.name, "verdict": entry.verdict, "batch_id": entry.batch_id}
    verdict = entry.received_at.isoformat()
    sent = arrival.emitted_at.isoformat() if arrival.emitted_at else dropped
    ingest = completed_run(settings, "on-arrival", "payload.path", path.name, 300)
    row |= {
        "drop_to_event_s": seconds(dropped, sent), "arrival_to_verdict_s": seconds(sent, verdict),
        "sent_at": sent,
        "ingest_work_s": ingest["total_run_time"], "ingest_created": ingest["created"],
        "ingest_started": ingest["start_time"], "ingest_ended": ingest["end_time"],
    }  # fmt: skip
    if entry.verdict != "accepted" or entry.batch_id is None:
        return row
    record = record_path(settings.reports_dir, entry.batch_id)
    wait_until(record.is_file, 900, f"drift record of {entry.batch_id}")
    recorded = datetime.fromtimestamp(record.stat().st_mtime, UTC).isoformat()
    drift = completed_run(settings, "on-accepted", "batch_id", entry.batch_id, 900)
    row |= {
        "verdict_to_drift_record_s": seconds(verdict, recorded),
        "arrival_to_drift_record_s": seconds(sent, recorded),
        "drift_work_s": drift["total_run_time"], "recorded_at": recorded, "dropped_at": dropped,
        "drift_created": drift["created"], "drift_started": drift["start_time"],
        "drift_ended": drift["end_time"],
        "verdict_at": verdict,
    }  # fmt: skip
    return row


def paced(settings: Settings, files: list[Path], every: float) -> list[dict[str, Any]]:
    start, dropped = time.monotonic(), []
    for i, path in enumerate(files):
        time.sleep(max(0.0, start + i * every - time.monotonic()))
        dropped.append(drop(path, settings.incoming_dir))
        print(f"  dropped {path.name}", flush=True)
    return [measure_batch(settings, p, d) for p, d in zip(files, dropped, strict=True)]


def renamed(files: list[Path], folder: Path, n: int) -> list[Path]:
    """n distinct batches for the burst: dev files under new batch ids."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        frame = pd.read_csv(files[i % len(files)], dtype=str, keep_default_na=False)
        frame["batch_id"] = f"burst-{i:03d}"
        out.append(folder / f"burst-{i:03d}.csv")
        frame.to_csv(out[-1], index=False)
    return out


def burst(settings: Settings, files: list[Path]) -> float:
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    names = {p.name for p in files}
    started = time.monotonic()
    for path in files:
        drop(path, settings.incoming_dir)
    wait_until(lambda: len([e for e in catalogue.entries() if e.file in names]) == len(names),
               1800, "the burst's verdicts", )  # fmt: skip
    return time.monotonic() - started


def locked_writes(log: str) -> list[str]:
    """The statement of each write the server's SQLite refused as locked (the stack logs these
    retryable errors, each a 503 its client asks again after seconds): which writes contend."""
    lines = log.splitlines()
    return [
        next((n[:160] for n in lines[i : i + 200] if n.startswith("[SQL:")), "?")
        for i, line in enumerate(lines)
        if "Encountered retryable exception" in line
    ]


def validation_times(spec_path: Path, files: list[Path], n: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the gate (GX included) per file, in a warm process: on a machine
    shared with other work the wall time says how busy it was, the CPU time what it costs."""
    spec = load_spec(spec_path)
    validate_file(files[0], spec)  # warm: GX imported, first context built
    wall, cpu = [], []
    for path in files[1 : n + 1]:
        began, began_cpu = time.perf_counter(), time.process_time()
        report, _ = validate_file(path, spec)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
        assert report.ok, report.summary()
    return wall, cpu


def stack_settings(root: Path, spec: Path, executor: str) -> Settings:
    os.environ["BIOPROCESSML_REPORTS_DIR"] = str(root / "reports")
    return Settings(
        state_dir=root / "state", data_dir=root / "data", spec_path=spec,
        prefect_api_url=f"http://127.0.0.1:{free_port()}/api", reports_dir=root / "reports",
        watch_settle_seconds=0.5, thresholds=Thresholds(bootstrap_batches=10_000),
        runtime=Runtime(executor=executor),  # type: ignore[arg-type]
    )  # fmt: skip


LAG_PARTS = {  # consecutive marks of one batch's way from its arrival event to its drift record
    "event → ingest run created": ("sent_at", "ingest_created"),
    "ingest run created → started": ("ingest_created", "ingest_started"),
    "ingest run started → verdict": ("ingest_started", "verdict_at"),
    "verdict → ingest run ended": ("verdict_at", "ingest_ended"),
    "verdict → drift run created": ("verdict_at", "drift_created"),
    "drift run created → started": ("drift_created", "drift_started"),
    "drift run started → drift record": ("drift_started", "recorded_at"),
    "drift record → drift run ended": ("recorded_at", "drift_ended"),
}


def lag_parts(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds of each part of the way, to see where the time goes beyond the work."""
    return {
        part: round(statistics.median(seconds(r[a], r[b]) or 0.0 for r in rows), 3)
        for part, (a, b) in LAG_PARTS.items()
    }


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in results["batches"] if "arrival_to_drift_record_s" in r]
    bare = statistics.median(results["bare_event_to_run_s"])
    ratios = [
        r["arrival_to_drift_record_s"] / (2 * bare + r["ingest_work_s"] + r["drift_work_s"])
        for r in rows
    ]
    third = max(1, len(rows) // 3)
    lag = [r["arrival_to_drift_record_s"] for r in rows]
    one = statistics.median(results["validation_s"])
    by_verdict = [r["batch_id"] for r in sorted(rows, key=lambda r: r["verdict_at"])]
    by_start = sorted(rows, key=lambda r: r["drift_started"])
    overlaps = sum(a["drift_ended"] > b["drift_started"] for a, b in itertools.pairwise(by_start))
    return {
        "monitoring_in_arrival_order": [r["batch_id"] for r in by_start] == by_verdict,
        "monitoring_runs_overlapping": overlaps,
        "bare_event_to_run_median_s": bare,
        "arrival_to_verdict_median_s": statistics.median(r["arrival_to_verdict_s"] for r in rows),
        "verdict_to_drift_record_median_s": statistics.median(
            r["verdict_to_drift_record_s"] for r in rows
        ),
        "arrival_to_drift_record_median_s": statistics.median(lag),
        "lag_parts_median_s": lag_parts(rows),
        "ratio_to_two_hops_plus_work_median": statistics.median(ratios),
        "ratio_to_two_hops_plus_work_max": max(ratios),
        "keeps_up": statistics.mean(lag[-third:])
        <= statistics.mean(lag[:third]) + results["every_s"],
        "validation_median_s": one,
        "validation_cpu_median_s": statistics.median(results["validation_cpu_s"]),
        "burst_budget_s": 2 * len(results["burst_files"]) * one + bare,
        "burst_all_verdicts_s": results["burst_all_verdicts_s"],
        "server_locked_writes": len(results["server_locked_writes"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, default=PROJECT_ROOT / "data/datasets/indpensim.yaml")
    parser.add_argument("--dev", type=Path, default=find_dev_set())
    parser.add_argument("--every", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--burst", type=int, default=30)
    parser.add_argument("--executor", choices=["runner", "process"], default="runner")
    args = parser.parse_args()
    disable_telemetry()
    try:
        files = dev_files(args.dev)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    results: dict[str, Any] = {"executor": args.executor, "every_s": args.every,
                               "load_before": os.getloadavg()}  # fmt: skip
    results["validation_s"], results["validation_cpu_s"] = validation_times(args.spec, files, 8)
    with tempfile.TemporaryDirectory() as tmp:
        settings = stack_settings(Path(tmp), args.spec.resolve(), args.executor)
        os.environ["PREFECT_API_URL"] = settings.prefect_api_url
        began = time.monotonic()
        up(settings, serve=False, ui=False)
        results["stack_start_s"] = time.monotonic() - began
        try:
            results["bare_event_to_run_s"] = probe_latency(settings, args.probes)
            results["batches"] = paced(settings, files, args.every)
            results["bare_event_to_run_s"] += probe_latency(settings, args.probes)
            burst_files = renamed(files, Path(tmp) / "burst", args.burst)
            results["burst_files"] = [p.name for p in burst_files]
            results["burst_all_verdicts_s"] = burst(settings, burst_files)
            server_log = (settings.state_dir / "logs" / "prefect-server.log").read_text()
            results["server_locked_writes"] = locked_writes(server_log)
        finally:
            down(settings)
    results["load_after"] = os.getloadavg()
    results["summary"] = summarise(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results["summary"], indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
