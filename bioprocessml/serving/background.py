"""Work the service does after an answer has gone out (the challenger's shadow predictions), run
by one background thread in rounds: the thread wakes at most every `interval` and runs all that
waits. Python runs one thread at a time, so fewer wake-ups take the interpreter from the
requests less often; the answers never wait for this work."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from bioprocessml.serving import metrics

log = logging.getLogger(__name__)


class Rounds:
    def __init__(self, interval: float = 0.1, capacity: int = 10_000, name: str = "shadow") -> None:
        self.interval, self.capacity = interval, capacity
        self._work: deque[Callable[[], None]] = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], None]) -> None:
        with self._changed:
            if len(self._work) >= self.capacity:
                metrics.SHADOW_DROPPED.inc()
                log.warning("shadow work dropped: %d wait already", len(self._work))
                return
            self._work.append(work)
            self._changed.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Run what waits, then stop."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._work) or self._closing)
                self._changed.wait_for(lambda: self._closing, self.interval)
                batch = list(self._work)
                self._work.clear()
                closing = self._closing
            for work in batch:
                try:
                    work()
                except Exception:  # one failed shadow must not stop the others
                    log.exception("shadow work failed")
            if closing:
                return
