"""What shadowing a challenger costs the served answers of the incremental API, measured so the
machine's changing load cannot bias it: while N clients follow their batches, shadow is switched
on and off every second, and the updates that ran wholly inside an on or an off window
(after it settled) are compared. Also what the shadow did: predictions logged, requests it
skipped (one per batch-hour, rollout.shadow_every_h), and predictions dropped.

Used by `benchmarks/serving_follow.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import httpx
import numpy as np
import psutil
from sqlalchemy import func, select

from bioprocessml.serving.db import engine_for, predictions
from bioprocessml.settings import Settings
from bioprocessml.stack import processes

Timings = list[tuple[int, float, float]]  # (history rows, start, end) of each update
# began, ended, shadow on then, server CPU at began and `settle` s after ended
Switch = tuple[float, float, bool, float, float]


def server_cpu(settings: Settings) -> float:
    """CPU seconds (user + system) the service's processes have used so far: what an update
    costs whatever else the machine runs."""
    record = processes.read_record(settings.state_dir, "bentoml-service")
    assert record is not None, "no process record of the service"
    root, total = psutil.Process(record.pid), 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def set_shadow(settings: Settings, challengers: dict[str, str] | None) -> None:
    """A rollout in shadow of each challenger version (None: roll back), then reload."""
    from bioprocessml.serving import rollout
    from bioprocessml.serving.rollout_store import active_rollouts

    for task, version in (challengers or {}).items():
        rollout.begin(settings, task, version, "serving benchmark")
    if challengers is None:
        for task in active_rollouts(engine_for(settings.prediction_log_url)):
            rollout.roll_back(settings, task, "serving benchmark: shadow off")
    token = settings.serving.admin_token
    assert token is not None
    status = httpx.post(f"{settings.serving.url}/admin/reload", timeout=120,
                        headers={"Authorization": f"Bearer {token.get_secret_value()}"}).json()  # fmt: skip
    stages = {t: status["tasks"][t]["stage"] for t in status["tasks"]}
    assert all(s == ("shadow" if challengers else None) for s in stages.values()), status


def shadow_counts(settings: Settings) -> dict[str, float]:
    """Challenger rows in the prediction log; the service's shadow counters."""
    with engine_for(settings.prediction_log_url).connect() as conn:
        rows = conn.scalar(select(func.count()).where(predictions.c.role == "challenger")) or 0
    text = httpx.get(f"{settings.serving.url}/metrics", timeout=30).text
    out = {"logged": float(rows)}
    for name in ("dropped", "skipped"):
        prefix = f"bioprocessml_shadow_{name}_total"
        out[name] = sum(float(line.split()[-1]) for line in text.splitlines()
                        if line.startswith(prefix))  # fmt: skip
    return out


def shadow_done(settings: Settings, before: dict[str, float], updates: int) -> dict[str, Any]:
    """Once the shadow work has drained (no new rows for 1 s): what it did since `before`."""
    last, still = -1.0, time.perf_counter()
    while time.perf_counter() - still < 1.0:
        now = shadow_counts(settings)
        if now["logged"] != last:
            last, still = now["logged"], time.perf_counter()
        time.sleep(0.2)
    delta = {k: now[k] - before[k] for k in now}
    asked = 2 * updates  # both tasks, every update
    return {"shadow_logged": delta["logged"], "shadow_skipped": delta["skipped"],
            "shadow_dropped": delta["dropped"], "shadowed_share": delta["logged"] / asked}  # fmt: skip


def split_by_shadow(timings: Timings, switches: list[Switch], settle: float) -> dict[str, Any]:
    """Latency of the updates that started `settle` s after a switch ended and ended before the
    next one began, by the shadow state then; the server's CPU per update in the same windows
    (the shadow work queued before a switch is done within `settle`)."""
    latency: dict[bool, list[float]] = {True: [], False: []}
    for _, start, end in timings:
        state, clean = False, True
        for began, ended, on, _, _ in switches:
            if began <= end and start <= ended + settle:
                clean = False
                break
            if ended <= start:
                state = on
        if clean:
            latency[state].append(end - start)
    cpu: dict[bool, list[float]] = {True: [0.0, 0.0], False: [0.0, 0.0]}  # seconds, updates
    for (_, ended, on, _, cpu_settled), (began, *_, cpu_began, _) in pairwise(switches):
        cpu[on][0] += cpu_began - cpu_settled
        cpu[on][1] += sum(ended + settle <= t[2] < began for t in timings)
    p50 = {k: float(np.median(v) * 1e3) if v else float("nan") for k, v in latency.items()}
    per = {k: v[0] / v[1] * 1e3 if v[1] else float("nan") for k, v in cpu.items()}
    return {
        "p50_ms_shadow": p50[True], "p50_ms_no_shadow": p50[False],
        "p50_ratio_shadow": p50[True] / p50[False],
        "updates_shadow": len(latency[True]), "updates_no_shadow": len(latency[False]),
        "server_cpu_ms_per_update_shadow": per[True],
        "server_cpu_ms_per_update_no_shadow": per[False],
        "server_cpu_ratio_shadow": per[True] / per[False],
    }  # fmt: skip


def follow_alternating(
    settings: Settings, challengers: dict[str, str], follow: Callable[[], Timings],
    period: float = 1.0, settle: float = 0.3,
) -> dict[str, Any]:  # fmt: skip
    """Run `follow` while a thread switches shadow on and off every `period` s."""
    switches: list[Switch] = []
    stop = threading.Event()

    def toggle() -> None:
        on = False
        while not stop.wait(period):
            on, began, cpu = not on, time.perf_counter(), server_cpu(settings)
            set_shadow(settings, challengers if on else None)
            ended = time.perf_counter()
            stop.wait(settle)  # the shadow work queued before the switch is done by then
            switches.append((began, ended, on, cpu, server_cpu(settings)))

    thread = threading.Thread(target=toggle, name="shadow-toggle")
    thread.start()
    try:
        timings = follow()
    finally:
        stop.set()
        thread.join()
    set_shadow(settings, None)
    return {**split_by_shadow(timings, switches, settle), "updates": len(timings),
            "switches": len(switches), "period_s": period, "settle_s": settle}  # fmt: skip
