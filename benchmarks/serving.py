"""Serving benchmark: /predict latency and throughput over HTTP against a real `bentoml serve`,
the same model calls in process, and the overhead of shadowing a challenger, in one run.

    .venv/bin/python benchmarks/serving.py [--requests 200] [--clients 4] [--seconds 10]

Trains PLS champions for both tasks on 8 small simulated batches in a temporary state folder,
starts the service on a free port, and sends one batch's first 24 h (~145 rows) per request.
Writes benchmarks/results/serving.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
from sqlalchemy import func, select

from bioprocessml.dataset import TIME, to_spec_frame
from bioprocessml.serving import rollout
from bioprocessml.serving.db import engine_for, predictions
from bioprocessml.serving.prediction_log import LoggedPrediction, record
from bioprocessml.serving.request import request_frame
from bioprocessml.settings import PROJECT_ROOT, Settings, disable_telemetry
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.stack.servers import BIN, down, free_port, start_process, wait_http
from models.base import TASKS, Task
from models.features import FeatureSpec, make_samples
from models.pls import PLSModel
from models.registry import (
    CHAMPION,
    MODEL_NAMES,
    Lineage,
    configure,
    log_candidate,
    register,
    set_alias,
)

RESULTS = Path(__file__).parent / "results" / "serving.json"
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
def register_model(settings: Settings, model: PLSModel, example: pd.DataFrame) -> str:
    """Log and register a model as training would; returns its version."""
    experiment = configure(settings)
    lineage = Lineage(
        data_version="benchmark", git_commit="benchmark", spec_sha256="0" * 64,
        train_batches=["N001"], holdout_batches=[],
    )  # fmt: skip
    run_id, uri = log_candidate(model, {"rmse": 0.1}, lineage, example, [], experiment)
    return register(uri, model.task, lineage, run_id)


def request_rows(batch: pd.DataFrame, spec: DatasetSpec, upto_h: float) -> list[dict[str, Any]]:
    """The batch's rows up to a time, as a client sends them: the spec's columns and units."""
    part = to_spec_frame(batch[batch[TIME] <= upto_h], spec)
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in part.to_dict(orient="records")
    ]


def server_env(root: Path, token: str) -> Settings:
    """The service reads its settings from the environment; the subprocess inherits them."""
    os.environ.update(
        BIOPROCESSML_STATE_DIR=str(root / "state"),
        BIOPROCESSML_DATA_DIR=str(root / "data"),
        BIOPROCESSML_SERVING__ADMIN_TOKEN=token,
        BIOPROCESSML_SERVING__PORT=str(free_port()),
        BIOPROCESSML_SERVING__POLL_SECONDS="600",  # switches only through /admin/reload
        BENTOML_HOME=str(root / "bentoml"),
    )
    return Settings().prepare()


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


def server_log_problems(path: Path) -> list[str]:
    if not path.exists():
        return []
    words = ("Traceback", "ERROR", "Exception", "CRITICAL")
    lines = path.read_text(errors="replace").splitlines()
    return [line for line in lines if any(word in line for word in words)]


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
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
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
    log_file = settings.state_dir / "logs" / "bentoml.log"
    command = [str(BIN / "bentoml"), "serve", "service:BioprocessService"]
    command += ["--host", settings.serving.host, "--port", str(settings.serving.port)]
    start = time.perf_counter()
    proc = start_process(settings, "bentoml", command, PROJECT_ROOT)
    try:
        wait_http(f"{url}/readyz", proc, 120, "BentoML service")
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
    problems = server_log_problems(log_file)
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
    parser.add_argument("--requests", type=int, default=200, help="sequential requests")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window")
    parser.add_argument("--keep", type=Path, help="keep the state folder here (server log)")
    args = parser.parse_args()
    disable_telemetry()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = run(args.keep.resolve(), args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = run(Path(tmp), args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
