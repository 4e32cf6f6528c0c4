"""Incremental API benchmark: clients follow IndPenSim dev batches (1150 rows x 35 columns, the
dataset spec data/datasets/indpensim.yaml) row by row through `POST /batches/{id}/rows`, at 1, 4
and 16 batches at once, without and with a challenger in shadow, against a real `bentoml serve`;
the same updates in process; and what each candidate's answer costs at 50 and 1150 rows.

Run through `benchmarks/serving.py` (`--part follow`); results in
benchmarks/results/serving_follow.json.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from devset import dev_files
from serving_setup import (
    machine,
    register_model,
    server_env,
    server_log_problems,
    service_log,
    start_ready_service,
)
from serving_shadow import (
    follow_alternating,
    server_cpu,
    set_shadow,
    shadow_counts,
    shadow_done,
)

from bioprocessml.dataset import BATCH_ID, load_batch
from bioprocessml.serving.answering import Answerer, model_input, predict_last
from bioprocessml.serving.batch_state import BatchHistory
from bioprocessml.serving.batch_store import BatchStore
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.deployed import ModelCache, build_deployment, wanted_now
from bioprocessml.serving.incremental import RowsRequest, add_rows
from bioprocessml.serving.log_writer import LogWriter
from bioprocessml.serving.request import request_rows
from bioprocessml.serving.rows import check_rows
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec

SMALL, LARGE = (25, 75), (1100, 1150)  # history lengths of "50 rows" and "1150 rows"


def load_dev_batches(dev: Path, spec: DatasetSpec) -> list[pd.DataFrame]:
    """Every dev batch (normal, then temperature-shift), read through the dataset spec."""
    return [load_batch(p, spec) for p in dev_files(dev)]


def row_bodies(batch: pd.DataFrame, spec: DatasetSpec, batch_id: str, rows: int) -> list[bytes]:
    """One request body per row, as a client following the batch sends them."""
    sent = request_rows(batch.assign(**{BATCH_ID: batch_id}), spec, float("inf"))[:rows]
    return [json.dumps({"first_row": i, "rows": [row]}).encode() for i, row in enumerate(sent)]


def window_stats(latency: dict[int, list[float]], window: tuple[int, int]) -> dict[str, float]:
    """Latency (ms) of the updates whose history after the update is in `window` rows."""
    ms = np.array([s for n, v in latency.items() if window[0] < n <= window[1] for s in v]) * 1e3
    if not len(ms):
        return {"n": 0}
    return {"n": len(ms), "p50_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean())}  # fmt: skip


def summarize(timings: list[tuple[int, float, float]], clients: int) -> dict[str, Any]:
    """(history rows, start, end) of every update → latency by history length and throughput,
    overall and while every batch held ≥ 1000 rows."""
    latency: dict[int, list[float]] = {}
    for rows, start, end in timings:
        latency.setdefault(rows, []).append(end - start)
    first, last = min(t[1] for t in timings), max(t[2] for t in timings)
    late = [t for t in timings if t[0] > 1000]
    out: dict[str, Any] = {
        "clients": clients, "updates": len(timings),
        "updates_per_second": len(timings) / (last - first),
        "at_50_rows": window_stats(latency, SMALL), "at_1150_rows": window_stats(latency, LARGE),
        "all": window_stats(latency, (0, 10**9)),
    }  # fmt: skip
    if late and clients > 1:
        start = max(t[1] for t in timings if t[0] == 1001)  # the last client to pass row 1000
        done = [t for t in late if t[1] >= start]
        span = max(t[2] for t in done) - start
        out["updates_per_second_past_1000_rows"] = len(done) / span if span > 0 else None
    small, large = out["at_50_rows"], out["at_1150_rows"]
    if small.get("n") and large.get("n"):
        out["p50_ratio_1150_vs_50"] = large["p50_ms"] / small["p50_ms"]
    return out


def follow_http(
    url: str, bodies: dict[str, list[bytes]], before: Callable[[int], None] | None = None
) -> list[tuple[int, float, float]]:
    """One thread and keep-alive connection per batch, each sending its rows back to back;
    (history rows, start, end) of every update. `before(n)` runs before row n (one batch)."""
    target = urlparse(url)
    timings: list[list[tuple[int, float, float]]] = [[] for _ in bodies]
    errors: list[str] = []
    barrier = threading.Barrier(len(bodies))

    def client(i: int, batch_id: str, mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        barrier.wait()
        for n, body in enumerate(mine, start=1):
            if before is not None:
                before(n)
            start = time.perf_counter()
            conn.request("POST", f"/batches/{batch_id}/rows", body, headers)
            response = conn.getresponse()
            text = response.read()
            end = time.perf_counter()
            if response.status != 200:
                errors.append(f"{batch_id} row {n}: {response.status} {text[:300]!r}")
                return
            timings[i].append((n, start, end))
        conn.close()

    threads = [threading.Thread(target=client, args=(i, b, v))
               for i, (b, v) in enumerate(bodies.items())]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed, e.g. {errors[0]}")
    return [t for per in timings for t in per]


def follow_in_process(
    settings: Settings, spec: DatasetSpec, bodies: list[bytes], batch_id: str
) -> dict[str, Any]:
    """What the service does per update without HTTP (body validation, checks, add, both
    models, log rows queued, the answer as JSON), row by row; plus the checks of one row."""
    scratch = engine_for(f"sqlite:///{(settings.state_dir / 'scratch-log.db').resolve()}")
    writer = LogWriter(scratch)
    answerer = Answerer(settings, spec, scratch, lambda: None, writer)
    deployment = build_deployment(ModelCache(), wanted_now(settings))
    store = BatchStore(spec, settings.serving, scratch, writer)
    timings = []
    for n, body in enumerate(bodies, start=1):
        start = time.perf_counter()
        request = RowsRequest.model_validate_json(body)
        response, _ = add_rows(store, answerer, deployment, spec, 20_000, batch_id, request)
        response.model_dump_json()  # the answer as the service sends it
        timings.append((n, start, time.perf_counter()))
    rows = json.loads(bodies[-1])["rows"]
    checks = []
    for _ in range(200):
        start = time.perf_counter()
        check_rows(batch_id, rows, spec, 20_000)
        checks.append(time.perf_counter() - start)
    writer.close()
    out = summarize(timings, 1)
    out["check_one_row_p50_ms"] = float(np.median(checks) * 1e3)
    return out


def candidate_costs(
    slots: dict[str, Any], batch: pd.DataFrame, spec: DatasetSpec
) -> dict[str, dict[str, Any]]:
    """Per candidate: does it answer from a feature view, and what its answer costs (ms, p50 of
    20 updates) at ~50 and ~1150 rows of a batch followed row by row."""
    checked = check_rows(str(batch[BATCH_ID].iloc[0]), request_rows(batch, spec, float("inf")),
                         spec, 20_000)  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for name, slot in slots.items():
        history = BatchHistory("bench", spec)
        costs: dict[int, list[float]] = {}
        for n in range(len(checked)):
            history.extend(_row(checked, n))
            if SMALL[1] - 20 < n + 1 <= SMALL[1] or LARGE[1] - 20 < n + 1 <= LARGE[1]:
                start = time.perf_counter()
                predict_last(slot, model_input(slot, history))
                costs.setdefault(n + 1, []).append(time.perf_counter() - start)
        out[name] = {
            "feature_view": slot.online is not None,
            "at_50_rows_ms": window_stats(costs, (SMALL[1] - 20, SMALL[1]))["p50_ms"],
            "at_1150_rows_ms": window_stats(costs, (LARGE[1] - 20, LARGE[1]))["p50_ms"],
        }
    return out


def _row(checked: Any, n: int) -> Any:
    from bioprocessml.serving.rows import CheckedRows

    return CheckedRows(
        checked.batch_id, checked.time[n : n + 1],
        {k: v[n : n + 1] for k, v in checked.values.items()},
        {k: v[n : n + 1] for k, v in checked.metadata.items()}, checked.origin,
    )  # fmt: skip


def train_champions(
    settings: Settings, batches: list[pd.DataFrame], spec: DatasetSpec
) -> dict[str, Any]:
    """PLS for both tasks on the first 8 dev batches, registered and made champions."""
    from models.base import TASKS
    from models.features import FeatureSpec, make_samples
    from models.pls import PLSModel
    from models.registry import CHAMPION, set_alias

    fs = FeatureSpec.from_spec(spec)
    models = {t: PLSModel(t, fs).fit(make_samples(batches[:8], fs, t)) for t in TASKS}
    for task, model in models.items():
        set_alias(task, CHAMPION, register_model(settings, model, batches[0].head(12)))
    return models


def candidate_slots(settings: Settings, batches: list[pd.DataFrame], spec: DatasetSpec) -> Any:
    """Soft sensors of every kind trained on 6 dev batches, registered, loaded as served."""
    from models.features import FeatureSpec, make_samples
    from models.training import build_candidate

    fs = FeatureSpec.from_spec(spec)
    samples = make_samples(batches[:6], fs, "soft_sensor")
    cache, slots = ModelCache(), {}
    for name in ("pls", "gp", "pls+assays", "hybrid", "lstm"):
        start = time.perf_counter()
        model = build_candidate(name, "soft_sensor", fs, settings).fit(samples)
        version = register_model(settings, model, batches[0].head(12))
        slots[name] = cache.slot("soft_sensor", version)
        print(f"  {name} trained and registered in {time.perf_counter() - start:.0f} s", flush=True)
    return slots


def http_runs(
    settings: Settings, batches: list[pd.DataFrame], spec: DatasetSpec,
    challengers: dict[str, str], args: Any,
) -> dict[str, Any]:  # fmt: skip
    """Warm-up; then per concurrency N batches at once without and with shadow (what the shadow
    did counted once it drained), and N batches with shadow switched on and off (a ratio the
    machine's changing load cannot bias: every 50 rows for 1 batch, every 1 s for more)."""
    url, runs = settings.serving.url, {}

    def bodies_of(label: str, clients: int, rows: int) -> dict[str, list[bytes]]:
        ids = [f"{label}-{clients}-{k}" for k in range(clients)]
        return {b: row_bodies(batches[(k + 3) % len(batches)], spec, b, rows)
                for k, b in enumerate(ids)}  # fmt: skip

    follow_http(url, bodies_of("warmup", 1, 100))
    for clients in args.concurrency:
        for label in ("no_shadow", "shadow"):
            set_shadow(settings, challengers if label == "shadow" else None)
            load, before, cpu = os.getloadavg()[0], shadow_counts(settings), server_cpu(settings)
            timings = follow_http(url, bodies_of(label, clients, args.rows))
            run = {**summarize(timings, clients), "load_average_1_min_before": load}
            done = shadow_done(settings, before, len(timings))  # drained: its CPU counted
            run["server_cpu_ms_per_update"] = (server_cpu(settings) - cpu) / len(timings) * 1e3
            if label == "shadow":
                run |= done
            runs[f"{label}_{clients}"] = run
            print(f"  {clients:2d} batches, {label:9s}: {run['updates_per_second']:.0f} "
                  f"updates/s, p50 {run['at_1150_rows'].get('p50_ms', 0):.2f} ms at "
                  f"1150 rows", flush=True)  # fmt: skip
        set_shadow(settings, None)
        if clients == 1:
            bodies = bodies_of("alternating", clients, args.rows)
            runs["shadow_alternating_1"] = alternate_rows(settings, challengers, url, bodies)
        else:  # ~1 min of updates: enough on and off windows
            rounds = [
                bodies_of(f"alternating{r}", clients, args.rows) for r in range(16 // clients)
            ]
            runs[f"shadow_alternating_{clients}"] = follow_alternating(
                settings, challengers, partial(follow_rounds, url, rounds)
            )
        alternating = runs[f"shadow_alternating_{clients}"]
        print(f"  {clients:2d} batches, shadow on/off: p50 {alternating['p50_ms_shadow']:.2f} vs "
              f"{alternating['p50_ms_no_shadow']:.2f} ms", flush=True)  # fmt: skip
    return runs


def follow_rounds(url: str, rounds: list[dict[str, list[bytes]]]) -> list[tuple[int, float, float]]:
    """`follow_http` of each set of batches in turn; all their timings."""
    return [t for bodies in rounds for t in follow_http(url, bodies)]


def alternate_rows(
    settings: Settings, challengers: dict[str, str], url: str, bodies: dict[str, list[bytes]]
) -> dict[str, Any]:
    """One batch, shadow switched on and off every 50 rows."""

    def toggle(n: int) -> None:
        if n % 50 == 1:
            set_shadow(settings, challengers if (n // 50) % 2 else None)

    timings = follow_http(url, bodies, before=toggle)
    set_shadow(settings, None)
    on = [t for t in timings if ((t[0] - 1) // 50) % 2]
    off = [t for t in timings if not ((t[0] - 1) // 50) % 2]
    p50 = {
        k: float(np.median([t[2] - t[1] for t in v]) * 1e3) for k, v in (("on", on), ("off", off))
    }
    return {
        "p50_ms_shadow": p50["on"], "p50_ms_no_shadow": p50["off"],
        "p50_ratio_shadow": p50["on"] / p50["off"], "updates": len(timings),
        "updates_shadow": len(on), "updates_no_shadow": len(off),
    }  # fmt: skip


def run_follow(root: Path, args: Any) -> dict[str, Any]:
    from bioprocessml.settings import PROJECT_ROOT
    from bioprocessml.spec import load_spec
    from bioprocessml.stack.servers import down

    token = secrets.token_hex(16)
    settings = server_env(root, token, PROJECT_ROOT / "data" / "datasets" / "indpensim.yaml")
    spec = load_spec(settings.spec_path)
    batches = load_dev_batches(args.dev, spec)
    results: dict[str, Any] = {"machine_before": machine(), "config": {
        "dev_set": str(args.dev), "spec": "indpensim", "rows_per_batch": args.rows,
        "model": "pls champions (both tasks) trained on 8 dev batches; shadow: a second pls",
        "shadow_every_h": settings.rollout.shadow_every_h,
        "windows": {"at_50_rows": SMALL, "at_1150_rows": LARGE},
    }}  # fmt: skip
    models = train_champions(settings, batches, spec)
    if args.candidates:
        print("candidates (soft sensor), each answer at 50 and 1150 rows:", flush=True)
        costs = candidate_costs(candidate_slots(settings, batches, spec), batches[9], spec)
        results["candidates"] = costs
    follow = row_bodies(batches[8], spec, "inproc", args.rows)
    results["in_process"] = follow_in_process(settings, spec, follow, "inproc")
    print("in process done", flush=True)
    challengers = {t: register_model(settings, m, batches[0].head(12)) for t, m in models.items()}
    try:
        start_ready_service(settings)
        results["http"] = http_runs(settings, batches, spec, challengers, args)
    finally:
        down(settings)
    results["server_log"] = {"problem_lines": len(server_log_problems(service_log(settings)))}
    results["machine_after"] = machine()
    return results


def print_follow(results: dict[str, Any]) -> None:
    def row(name: str, s: dict[str, Any]) -> None:
        small, large = s["at_50_rows"], s["at_1150_rows"]
        ratio = s.get("p50_ratio_1150_vs_50", float("nan"))
        rate = s.get("updates_per_second_past_1000_rows") or s["updates_per_second"]
        print(f"{name:30s} {small.get('p50_ms', 0):8.2f} {large.get('p50_ms', 0):8.2f} "
              f"{large.get('p95_ms', 0):8.2f} {ratio:7.2f} {rate:9.0f}")  # fmt: skip

    print(f"\nfollowing batches row by row ({results['config']['rows_per_batch']} rows), "
          f"load before {results['machine_before']['load_average_1_5_15_min']}")  # fmt: skip
    print(f"{'':30s} {'p50@50':>8s} {'p50@1150':>8s} {'p95@1150':>8s} {'ratio':>7s} "
          f"{'updates/s':>9s}")  # fmt: skip
    row("in process, 1 batch", results["in_process"])
    for name, run in results.get("http", {}).items():
        if "at_50_rows" in run:
            row(f"HTTP {name}", run)
    for name, run in results.get("http", {}).items():
        if name.startswith("shadow_alternating_"):
            cpu = run.get("server_cpu_ratio_shadow", float("nan"))
            print(f"shadow switched on and off, {name.rsplit('_', 1)[1]:>2s} batches: p50 "
                  f"{run['p50_ms_shadow']:.2f} ms with, {run['p50_ms_no_shadow']:.2f} without: "
                  f"x{run['p50_ratio_shadow']:.3f}; server CPU per update x{cpu:.3f}")  # fmt: skip
        elif "shadow_logged" in run:
            print(f"{name}: {run['shadow_logged']:.0f} shadow predictions logged "
                  f"({run['shadowed_share']:.1%} of task answers), {run['shadow_skipped']:.0f} "
                  f"skipped by the schedule, {run['shadow_dropped']:.0f} dropped")  # fmt: skip
    for name, cost in results.get("candidates", {}).items():
        print(
            f"candidate {name:10s} view={cost['feature_view']!s:5s} answer p50 "
            f"{cost['at_50_rows_ms']:.2f} ms at 50 rows, {cost['at_1150_rows_ms']:.2f} ms at 1150"
        )
