"""A client that calls /predict from a few threads (without pause by default) and counts what
came back:
the load test, the demo campaign and the serving benchmark use it to show that model switches
never fail a request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel

Payload = dict[str, Any]


class LoadReport(BaseModel):
    sent: int
    ok: int
    failed: int
    failures: list[str] = []
    p50_ms: float
    p99_ms: float
    seconds: float
    versions: dict[str, int] = {}  # "soft_sensor:2" → answers that version served

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class LoadGenerator:
    """Start with `start()`, stop with `stop()`, which returns the report."""

    def __init__(
        self, url: str, payload: Callable[[int], Payload], clients: int = 2, pause_s: float = 0.0
    ) -> None:
        self.url, self.payload, self.clients, self.pause_s = (
            url.rstrip("/"),
            payload,
            clients,
            pause_s,
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self._failures: list[str] = []
        self._versions: Counter[str] = Counter()
        self._batches: Counter[str] = Counter()
        self._sent = 0
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def start(self) -> LoadGenerator:
        self._started = time.perf_counter()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        seconds = time.perf_counter() - self._started
        with self._lock:
            latencies = np.asarray(self._latencies) * 1000 if self._latencies else np.zeros(1)
            return LoadReport(
                sent=self._sent, ok=len(self._latencies), failed=len(self._failures),
                failures=self._failures[:10], p50_ms=float(np.percentile(latencies, 50)),
                p99_ms=float(np.percentile(latencies, 99)), seconds=seconds,
                versions=dict(self._versions),
            )  # fmt: skip

    def answered(self, batch_id: str) -> int:
        """Successful answers so far for one batch."""
        with self._lock:
            return self._batches[batch_id]

    def _run(self, client_index: int) -> None:
        with httpx.Client(timeout=60) as client:
            i = client_index
            while not self._stop.is_set():
                self._call(client, self.payload(i))
                i += self.clients
                self._stop.wait(self.pause_s)

    def _call(self, client: httpx.Client, payload: Payload) -> None:
        start = time.perf_counter()
        try:
            response = client.post(f"{self.url}/predict", json=payload)
            failure = (
                None
                if response.status_code == 200
                else f"{response.status_code}: {response.text[:200]}"
            )
        except httpx.HTTPError as exc:
            response, failure = None, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - start
        with self._lock:
            self._sent += 1
            if failure is not None or response is None:
                self._failures.append(failure or "no response")
                return
            self._latencies.append(elapsed)
            body = response.json()
            self._batches[body["batch_id"]] += 1
            for key, task in (("titer_now", "soft_sensor"), ("titer_at_harvest", "harvest")):
                if body.get(key) is not None:  # null: the task has no champion (reason given)
                    self._versions[f"{task}:{body[key]['version']}"] += 1
