"""Writes to the serving database from a background thread, so that a slow, locked or
unavailable database never delays or fails an answer.

Rows wait in memory and go in one transaction per table and round. While the database fails
they keep waiting (retried with a growing pause, up to 10 s) and are written when it answers
again; beyond `capacity` waiting rows new ones are dropped and counted in
`bioprocessml_log_rows_lost_total`, never silently. The backtest writes directly instead
(`DirectLog`): its rollout decisions read the log right after each answer.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Protocol

from sqlalchemy import Engine, Table, insert

from bioprocessml.serving import metrics
from bioprocessml.serving.db import now, predictions
from bioprocessml.serving.prediction_log import LoggedPrediction, record

log = logging.getLogger(__name__)
MAX_PAUSE_SECONDS = 10.0
ROUND_ROWS = 5000


class PredictionSink(Protocol):
    def record(self, rows: list[LoggedPrediction]) -> None: ...

    def flush(self, timeout: float = 10.0) -> bool: ...


class DirectLog:
    """Each row written at once, in the caller's thread (the backtest)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, rows: list[LoggedPrediction]) -> None:
        record(self.engine, rows)

    def flush(self, timeout: float = 10.0) -> bool:
        return True


class LogWriter:
    """The service's writer (see the module docstring); `close` writes what is left."""

    def __init__(self, engine: Engine, capacity: int = 100_000, interval: float = 0.2) -> None:
        self.engine, self.capacity, self.interval = engine, capacity, interval
        self._rows: deque[tuple[Table, dict[str, Any]]] = deque()
        self._queued = self._done = 0  # rows handed over / written or dropped, ever
        self._changed = threading.Condition()
        self._closing = self._urgent = False
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def record(self, rows: list[LoggedPrediction]) -> None:
        stamp = now()  # when it was predicted, not when the database took it
        self.put(predictions, [{**r.model_dump(), "created_at": stamp} for r in rows])

    def put(self, table: Table, rows: list[dict[str, Any]]) -> None:
        with self._changed:
            idle, room = not self._rows, max(0, self.capacity - len(self._rows))
            for row in rows[:room]:
                self._rows.append((table, row))
            self._queued += len(rows)
            if len(rows) > room:
                self._done += len(rows) - room
                metrics.LOG_LOST.labels(table.name).inc(len(rows) - room)
                log.error("%d %s rows dropped: %d rows wait for the database already",
                          len(rows) - room, table.name, len(self._rows))  # fmt: skip
            metrics.LOG_WAITING.set(len(self._rows))
            if idle:  # only a writer waiting for rows needs waking: each wake-up takes the GIL
                self._changed.notify_all()

    @property
    def done(self) -> int:
        """How many rows were written or dropped so far."""
        with self._changed:
            return self._done

    def mark(self) -> int:
        """How many rows were handed over so far (for `flush(upto=...)`)."""
        with self._changed:
            return self._queued

    def flush(self, timeout: float = 10.0, upto: int | None = None) -> bool:
        """Wait until every row handed over so far (or the first `upto`) is written or
        dropped; False on timeout."""
        with self._changed:
            target = self._queued if upto is None else upto
            self._urgent = True
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)
        if self._rows:
            log.error("%d log rows not written at shutdown (database unavailable)", len(self._rows))

    def _run(self) -> None:
        """Rounds at most every `interval` (one transaction for many answers: few wake-ups
        taking the interpreter from the requests), at once when someone flushes."""
        pause = self.interval
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._rows) or self._closing)
                self._changed.wait_for(lambda: self._urgent or self._closing, self.interval)
                if self._closing:
                    return
                self._urgent = False
                batch = [self._rows[i] for i in range(min(len(self._rows), ROUND_ROWS))]
            if not batch:
                continue
            try:
                self._write(batch)
            except Exception as exc:  # kept in memory and retried; the reason is logged
                metrics.LOG_FAILURES.inc()
                log.warning("serving database unavailable (%s); %d rows wait, retry in %.1f s",
                            exc, len(batch), pause)  # fmt: skip
                with self._changed:
                    self._changed.wait_for(lambda: self._closing, pause)
                pause = min(MAX_PAUSE_SECONDS, pause * 2 if pause >= 0.5 else 0.5)
                continue
            pause = self.interval
            with self._changed:
                for _ in batch:
                    self._rows.popleft()
                self._done += len(batch)
                metrics.LOG_WAITING.set(len(self._rows))
                self._changed.notify_all()

    def _write(self, batch: list[tuple[Table, dict[str, Any]]]) -> None:
        by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        for table, row in batch:
            by_table.setdefault(table.name, (table, []))[1].append(row)
        with self.engine.begin() as conn:
            for table, rows in by_table.values():
                conn.execute(insert(table), rows)
