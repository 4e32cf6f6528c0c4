"""Running batches the service follows: held in memory within bounds (the least recently used
leaves first when more than `batch_cache` are held; any idle longer than `batch_idle_hours`
leaves), and every accepted block of rows stored in the serving database, so a batch that left
memory, or was held by a service that restarted, comes back as it was on its next request.

A block stored at row 0 starts its batch over: it is how a client that the service answered
"0 rows held" (database unavailable when it rebuilt) re-sent the batch.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, select

from bioprocessml.serving import metrics
from bioprocessml.serving.batch_state import BatchHistory
from bioprocessml.serving.db import batch_rows, now
from bioprocessml.serving.log_writer import LogWriter
from bioprocessml.serving.rows import CheckedRows
from bioprocessml.settings import Serving
from bioprocessml.spec import DatasetSpec

log = logging.getLogger(__name__)


class BatchStore:
    def __init__(
        self, spec: DatasetSpec, serving: Serving, engine: Engine, writer: LogWriter
    ) -> None:
        self.spec, self.serving, self.engine, self.writer = spec, serving, engine, writer
        self._held: OrderedDict[str, BatchHistory] = OrderedDict()
        self._left: dict[str, int] = {}  # evicted batches: the writer's mark when they left
        self._lock = threading.Lock()

    @contextmanager
    def open(self, batch_id: str) -> Iterator[BatchHistory]:
        """The batch's history (rebuilt from its stored rows if not held), locked for the caller."""
        with self._lock:
            history = self._held.get(batch_id)
            if history is not None:
                self._held.move_to_end(batch_id)
        if history is None:
            rebuilt = self._rebuild(batch_id)
            with self._lock:
                history = self._held.setdefault(batch_id, rebuilt)
                self._held.move_to_end(batch_id)
        with history.lock:
            yield history
        with self._lock:
            self._evict()

    def keep(self, history: BatchHistory, first_row: int, rows: CheckedRows) -> None:
        """Store a block of rows just added to a history (written in the background)."""
        numbers = np.vstack([rows.time, *(rows.values[n] for n in history.names)])
        self.writer.put(batch_rows, [{
            "batch_id": history.batch_id, "first_row": first_row, "rows": len(rows),
            "spec_sha256": self.spec.sha256, "numbers": numbers.astype("<f8").tobytes(),
            "metadata": json.dumps(rows.metadata),
            "origin": None if rows.origin is None else rows.origin.isoformat(),
            "created_at": now(),
        }])  # fmt: skip

    def forget(self, batch_id: str) -> int:
        """Drop a finished batch from memory and the database; how many rows it had."""
        with self._lock:
            history = self._held.pop(batch_id, None)
            metrics.BATCHES_HELD.set(len(self._held))
        self.writer.flush(5.0)
        with self.engine.begin() as conn:
            query = select(batch_rows.c.rows).where(batch_rows.c.batch_id == batch_id)
            stored: list[int] = list(conn.execute(query).scalars())
            held = history.rows if history is not None else sum(stored)
            conn.execute(delete(batch_rows).where(batch_rows.c.batch_id == batch_id))
        if history is not None:
            metrics.BATCH_EVICTIONS.labels("ended").inc()
        return held

    def purge(self) -> int:
        """Delete stored rows older than `batch_retention_days` (batches long finished)."""
        cutoff = now() - timedelta(days=self.serving.batch_retention_days)
        with self.engine.begin() as conn:
            done = conn.execute(delete(batch_rows).where(batch_rows.c.created_at < cutoff))
        return int(done.rowcount or 0)

    def _evict(self) -> None:
        idle = time.monotonic() - 3600.0 * self.serving.batch_idle_hours
        for batch_id, history in list(self._held.items()):
            full = len(self._held) > self.serving.batch_cache
            if (full or history.touched < idle) and not history.lock.locked():
                del self._held[batch_id]
                self._left[batch_id] = self.writer.mark()
                if len(self._left) > 4 * self.serving.batch_cache:
                    done = self.writer.done
                    self._left = {k: v for k, v in self._left.items() if v > done}
                metrics.BATCH_EVICTIONS.labels("full" if full else "idle").inc()
            elif not full:
                break  # the rest were used more recently
        metrics.BATCHES_HELD.set(len(self._held))

    def _rebuild(self, batch_id: str) -> BatchHistory:
        """A history from the batch's stored rows (empty when there are none or they cannot
        be read now: the client is then told to re-send from row 0)."""
        history = BatchHistory(batch_id, self.spec)
        with self._lock:
            left = self._left.pop(batch_id, None)
        if left is not None:  # its last rows may still wait for the database
            self.writer.flush(5.0, upto=left)
        try:
            with self.engine.connect() as conn:
                query = select(batch_rows).where(batch_rows.c.batch_id == batch_id)
                blocks = conn.execute(query.order_by(batch_rows.c.id)).mappings().all()
        except Exception:
            log.exception("stored rows of batch %s cannot be read; it starts empty", batch_id)
            return history
        for block in self._consistent(list(blocks)):
            history.extend(self._unpack(block, history))
        if history.rows:
            metrics.BATCH_REBUILDS.inc()
            log.info("batch %s rebuilt from %d stored rows", batch_id, history.rows)
        return history

    def _consistent(self, blocks: list[Any]) -> list[Any]:
        """The stored blocks that make the batch: a block at row 0 starts it over; one that
        does not continue it (another spec, a gap) ends what can be rebuilt."""
        kept: list[Any] = []
        rows, broken = 0, False
        for block in blocks:
            if block.first_row == 0:
                kept, rows, broken = [], 0, False
            if broken:
                continue
            if block.first_row != rows or block.spec_sha256 != self.spec.sha256:
                log.warning("batch %s: stored rows from row %d do not continue its %d rows",
                            block.batch_id, block.first_row, rows)  # fmt: skip
                broken = True
                continue
            kept.append(block)
            rows += block.rows
        return kept

    @staticmethod
    def _unpack(block: Any, history: BatchHistory) -> CheckedRows:
        numbers = np.frombuffer(block.numbers, dtype="<f8").reshape(1 + len(history.names), -1)
        values = {name: numbers[i + 1].copy() for i, name in enumerate(history.names)}
        origin = None if block.origin is None else pd.Timestamp(block.origin)
        return CheckedRows(
            history.batch_id, numbers[0].copy(), values, json.loads(block.metadata), origin
        )
