"""Serving benchmark, in one run against a real `bentoml serve` on a free port:

- whole history (`--part whole`): /predict latency and throughput over HTTP, the same model
  calls in process, and the overhead of shadowing a challenger. PLS champions of both tasks on
  8 small simulated batches; one batch's first 24 h (~145 rows) per request.
  → benchmarks/results/serving.json
- incremental (`--part follow`, `benchmarks/serving_follow.py`): clients follow IndPenSim dev
  batches row by row through POST /batches/{id}/rows at 1, 4 and 16 batches at once, without
  and with shadow; the same updates in process; each candidate's cost at 50 and 1150 rows.
  → benchmarks/results/serving_follow.json

    .venv/bin/python benchmarks/serving.py [--part all|whole|follow] [--dev DIR] [--rows 1150]
        [--concurrency 1 4 16] [--no-candidates] [--requests 200] [--clients 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from devset import find_dev_set
from serving_follow import print_follow, run_follow
from serving_setup import (
    machine,
    register_model,
    server_env,
    server_log_problems,
    service_log,
    start_ready_service,
)
from sqlalchemy import func, select

from bioprocessml.serving import rollout
from bioprocessml.serving.db import engine_for, predictions
from bioprocessml.serving.prediction_log import LoggedPrediction, record
from bioprocessml.serving.request import request_frame, request_rows
from bioprocessml.settings import Settings, disable_telemetry
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.stack.servers import down
from models.base import TASKS, Task
from models.features import FeatureSpec, make_samples
from models.pls import PLSModel
from models.registry import CHAMPION, MODEL_NAMES, configure, set_alias

RESULTS = Path(__file__).parent / "results" / "serving.json"
FOLLOW = Path(__file__).parent / "results" / "serving_follow.json"
SMALL = SimConfig(duration_h=48.0, online_interval_min=10.0)  # as the tests' TINY batches
HISTORY_H = 24.0
BATCH_ID = "N101"


def summary(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "n": len(ms),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def timed(call: Callable[[], Any], n: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


# --- set-up ------------------------------------------------------------------------------------
# --- in process --------------------------------------------------------------------------------
def bench_in_process(
    settings: Settings, versions: dict[Task, str], rows: list[dict[str, Any]], spec: DatasetSpec,
    n: int,
) -> dict[str, Any]:  # fmt: skip
    """What the service does per request without HTTP: request_frame, then each task's pyfunc
    predict and its last row (as `BioprocessService._run`); and the two prediction-log inserts."""
    import mlflow.pyfunc
    import torch

    torch.set_num_threads(1)  # as the service
    configure(settings)
    loaded = {
        task: mlflow.pyfunc.load_model(f"models:/{MODEL_NAMES[task]}/{version}")
        for task, version in versions.items()
    }
    max_rows = settings.serving.max_rows
    frame = request_frame(BATCH_ID, rows, spec, max_rows)

    def models_only() -> None:
        for model in loaded.values():
            row = pd.DataFrame(model.predict(frame)).iloc[-1]
            float(row["mean"]), float(row["lower"]), float(row["upper"])

    def whole() -> None:
        nonlocal frame
        frame = request_frame(BATCH_ID, rows, spec, max_rows)
        models_only()

    scratch = engine_for(f"sqlite:///{(settings.state_dir / 'scratch-log.db').resolve()}")
    entry = LoggedPrediction(
        request_id="x", batch_id=BATCH_ID, task="soft_sensor", model_version="1",
        role="champion", route="champion", served=True, batch_time_h=HISTORY_H, mean=1.0,
        lower=0.5, upper=1.5, error=None, latency_ms=1.0,
    )  # fmt: skip

    def log_two() -> None:  # the service writes one row per task, each in its own transaction
        record(scratch, [entry])
        record(scratch, [entry])

    return {
        "request_frame": summary(timed(lambda: request_frame(BATCH_ID, rows, spec, max_rows), n)),
        "models_both_tasks": summary(timed(models_only, n)),
        "request_frame_plus_models": summary(timed(whole, n)),
        "prediction_log_two_inserts": summary(timed(log_two, n)),
    }


# --- over HTTP ---------------------------------------------------------------------------------
def post(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/predict", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"/predict answered {response.status_code}: {response.text[:500]}")
    answer = response.json()
    for key in ("titer_now", "titer_at_harvest"):  # shadow never changes the answer
        assert answer[key]["route"] == "champion" and answer[key]["version"] == "1", answer


def bench_sequential(url: str, body: dict[str, Any], n: int) -> dict[str, float]:
    with httpx.Client(base_url=url, timeout=60) as client:  # one keep-alive connection
        seconds = timed(lambda: post(client, body), n, warmup=20)
    return {**summary(seconds), "requests_per_second": n / sum(seconds)}


def bench_throughput(
    url: str, body: dict[str, Any], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` threads, each with its own keep-alive connection, posting for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client_loop(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            post(client, body)  # connect and warm up outside the window
            barrier.wait()
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    post(client, body)
                except Exception as exc:
                    errors.append(repr(exc))
                    return
                latencies[i].append(time.perf_counter() - start)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start  # includes the requests in flight at the stop
    done = [s for per_client in latencies for s in per_client]
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed, e.g. {errors[0]}")
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(done),
        "requests_per_second": len(done) / elapsed,
        **summary(done),
    }


def logged_rows(settings: Settings) -> dict[str, int]:
    """Prediction-log rows by role: served champion answers and shadowed challenger ones."""
    with engine_for(settings.prediction_log_url).connect() as conn:
        return {
            role: int(conn.scalar(select(func.count()).where(predictions.c.role == role)) or 0)
            for role in ("champion", "challenger")
        }


def wait_for_shadow(settings: Settings, expected: int, timeout: float = 60) -> float:
    """Seconds until the challenger rows reach `expected` (the shadow queue is drained)."""
    start = time.perf_counter()
    while logged_rows(settings)["challenger"] < expected:
        if time.perf_counter() - start > timeout:
            break
        time.sleep(0.05)
    return time.perf_counter() - start


# --- the run -----------------------------------------------------------------------------------
def run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    token = secrets.token_hex(16)
    settings = server_env(root, token)
    spec = load_spec(settings.spec_path)
    features = FeatureSpec.from_spec(spec)

    start = time.perf_counter()
    training = simulate(8, "normal", seed=21, cfg=SMALL)
    live = simulate(1, "normal", seed=22, start=101, cfg=SMALL)[0]
    pls = {
        task: PLSModel(task, features).fit(make_samples(training, features, task)) for task in TASKS
    }
    example = training[0].head(12)
    champions = {task: register_model(settings, model, example) for task, model in pls.items()}
    for task, version in champions.items():
        set_alias(task, CHAMPION, version)
    setup_seconds = time.perf_counter() - start

    rows = request_rows(live, spec, HISTORY_H)
    body = {"batch_id": BATCH_ID, "rows": rows}
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {
            "model": "pls, both tasks",
            "history_h": HISTORY_H,
            "rows_per_request": len(rows),
            "request_bytes": len(json.dumps(body)),
            "sequential_requests": args.requests,
            "clients": args.clients,
            "throughput_seconds": args.seconds,
        },
        "setup_seconds": setup_seconds,
    }
    print(f"trained and registered champions in {setup_seconds:.1f} s", flush=True)

    results["in_process"] = bench_in_process(settings, champions, rows, spec, args.requests)
    print("in process done", flush=True)

    url = settings.serving.url
    start = time.perf_counter()
    try:
        start_ready_service(settings)
        results["server_startup_seconds"] = time.perf_counter() - start
        print(f"service ready in {results['server_startup_seconds']:.1f} s", flush=True)

        plain = {
            "sequential": bench_sequential(url, body, args.requests),
            "throughput": bench_throughput(url, body, args.clients, args.seconds),
        }
        results["http"] = plain
        served_before_shadow = logged_rows(settings)["champion"]
        print("HTTP without shadow done", flush=True)

        # Shadow: the same PLS again as challenger of each task, rollout in shadow, reload.
        challengers = {task: register_model(settings, m, example) for task, m in pls.items()}
        for task, version in challengers.items():
            rollout.begin(settings, task, version, "serving benchmark")
        auth = {"Authorization": f"Bearer {token}"}
        status = httpx.post(f"{url}/admin/reload", headers=auth, timeout=120).json()
        for task in TASKS:
            wanted = status["tasks"][task]
            assert wanted["stage"] == "shadow" and wanted["challenger"] == challengers[task], status

        sequential = bench_sequential(url, body, args.requests)
        after_sequential = logged_rows(settings)
        shadow_requests = (after_sequential["champion"] - served_before_shadow) // len(TASKS)
        drain_sequential = wait_for_shadow(settings, shadow_requests * len(TASKS))
        throughput = bench_throughput(url, body, args.clients, args.seconds)
        at_stop = logged_rows(settings)
        drain_throughput = wait_for_shadow(settings, at_stop["champion"] - served_before_shadow)
        final = logged_rows(settings)
        expected_shadow = final["champion"] - served_before_shadow  # one per task and request
        results["shadow"] = {
            "sequential": sequential,
            "throughput": throughput,
            "latency_ratio_p50": sequential["p50_ms"] / plain["sequential"]["p50_ms"],
            "latency_ratio_p95": sequential["p95_ms"] / plain["sequential"]["p95_ms"],
            "latency_ratio_p99": sequential["p99_ms"] / plain["sequential"]["p99_ms"],
            "throughput_ratio": throughput["requests_per_second"]
            / plain["throughput"]["requests_per_second"],
            "shadow_rows_logged": final["challenger"],
            "shadow_rows_expected": expected_shadow,
            "shadow_backlog_after_sequential_rows": shadow_requests * len(TASKS)
            - after_sequential["challenger"],
            "shadow_drain_after_sequential_seconds": drain_sequential,
            "shadow_backlog_after_throughput_rows": (at_stop["champion"] - served_before_shadow)
            - at_stop["challenger"],
            "shadow_drain_after_throughput_seconds": drain_throughput,
            "served_rows_logged_total": final["champion"],
        }
        print("HTTP with shadow done", flush=True)
    finally:
        down(settings)
    problems = server_log_problems(service_log(settings))
    results["server_log"] = {"problem_lines": len(problems), "first": problems[:10]}
    inproc = results["in_process"]["request_frame_plus_models"]
    http = results["http"]["sequential"]
    results["http_overhead_ms"] = {
        key: http[key] - inproc[key] for key in ("p50_ms", "mean_ms")
    }  # differences of medians and means; a difference of tail percentiles means little
    return results


def print_table(results: dict[str, Any]) -> None:
    def line(name: str, s: dict[str, Any]) -> None:
        cells = [s.get(key) for key in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")]
        print(f"{name:42s}", *(f"{'':8s}" if c is None else f"{c:8.2f}" for c in cells))

    config = results["config"]
    print(
        f"\n{config['rows_per_request']} rows per request, {results['machine']['cpu_count']} CPUs"
    )
    print(f"{'latency (ms)':42s} {'p50':>8s} {'p95':>8s} {'p99':>8s} {'mean':>8s}")
    inproc = results["in_process"]
    line("in process: request_frame", inproc["request_frame"])
    line("in process: both models' predict", inproc["models_both_tasks"])
    line("in process: request_frame + models", inproc["request_frame_plus_models"])
    line("in process: prediction log, 2 inserts", inproc["prediction_log_two_inserts"])
    line("HTTP /predict, sequential", results["http"]["sequential"])
    line("HTTP overhead (HTTP - in process)", results["http_overhead_ms"])
    line("HTTP /predict, sequential, shadow on", results["shadow"]["sequential"])
    for name, values in [("no shadow", results["http"]), ("shadow on", results["shadow"])]:
        rate = values["sequential"]["requests_per_second"]
        print(f"throughput, 1 client (sequential), {name}: {rate:.1f} req/s")
    for name, values in [("no shadow", results["http"]), ("shadow on", results["shadow"])]:
        tp = values["throughput"]
        print(
            f"throughput, {tp['clients']} clients, {name}: {tp['requests_per_second']:.1f} req/s "
            f"({tp['requests']} in {tp['seconds']:.1f} s, p50 {tp['p50_ms']:.1f} ms, "
            f"p99 {tp['p99_ms']:.1f} ms)"
        )
    shadow = results["shadow"]
    print(
        f"shadow/no shadow: latency p50 x{shadow['latency_ratio_p50']:.2f}, "
        f"p99 x{shadow['latency_ratio_p99']:.2f}, throughput x{shadow['throughput_ratio']:.2f}; "
        f"shadow rows {shadow['shadow_rows_logged']}/{shadow['shadow_rows_expected']}, "
        f"backlog after throughput {shadow['shadow_backlog_after_throughput_rows']} rows, "
        f"drained in {shadow['shadow_drain_after_throughput_seconds']:.1f} s"
    )
    print(f"server log lines with errors: {results['server_log']['problem_lines']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--part", choices=["all", "whole", "follow"], default="all")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window")
    parser.add_argument("--dev", type=Path, default=find_dev_set(), help="IndPenSim dev set")
    parser.add_argument("--rows", type=int, default=1150, help="rows followed per batch")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--no-candidates", dest="candidates", action="store_false",
                        help="skip timing each candidate kind (trains five soft sensors)")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep the state folders here (server logs)")
    args = parser.parse_args()
    disable_telemetry()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    parts = [("whole", run, RESULTS, print_table), ("follow", run_follow, FOLLOW, print_follow)]
    for name, runner, path, show in parts:
        if args.part not in ("all", name):
            continue
        if args.keep:
            (args.keep / name).mkdir(parents=True, exist_ok=True)
            results = runner((args.keep / name).resolve(), args)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                results = runner(Path(tmp), args)
        path.write_text(json.dumps(results, indent=2))
        show(results)
        print(f"written to {path}")


if __name__ == "__main__":
    main()
