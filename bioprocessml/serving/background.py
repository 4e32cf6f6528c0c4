"""Work the service does after an answer has gone out (the challenger's shadow predictions), run
by one background thread in rounds: the thread wakes at most every `interval` and runs all that
waits. Python runs one thread at a time, so fewer wake-ups take the interpreter from the
requests less often; the answers never wait for this work.

The rollout decides on these predictions, so they are never rationed by CPU (a budget that
sheds them under load would make the decisions depend on the load); their number is kept down
upstream instead (`serving/shadow_schedule.py`). Only past `capacity` waiting (a service that
cannot keep up at all) is work dropped and counted (`bioprocessml_shadow_dropped`); a thread
that stopped is started again on the next submit.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from bioprocessml.serving import metrics

log = logging.getLogger(__name__)


class Rounds:
    def __init__(self, interval: float = 0.1, capacity: int = 10_000, name: str = "shadow") -> None:
        self.interval, self.capacity, self.name = interval, capacity, name
        self._work: deque[Callable[[], None]] = deque()
        self._changed = threading.Condition()
        self._closing = False
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        thread.start()
        return thread

    def submit(self, work: Callable[[], None]) -> None:
        with self._changed:
            self._restart_if_stopped()
            if len(self._work) >= self.capacity:
                metrics.SHADOW_DROPPED.inc()
                log.warning("%s work dropped: %d wait already", self.name, len(self._work))
                return
            self._work.append(work)
            if len(self._work) == 1:  # only a thread waiting for work needs waking (the GIL)
                self._changed.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Run what waits, then stop."""
        with self._changed:
            self._closing = True
            if self._work:
                self._restart_if_stopped()
            self._changed.notify_all()
        self._thread.join(timeout)

    def _restart_if_stopped(self) -> None:
        if self._thread.is_alive():
            return
        metrics.SHADOW_RESTARTS.inc()
        log.error("the %s thread had stopped; starting it again", self.name)
        self._thread = self._start()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._work) or self._closing)
                self._changed.wait_for(lambda: self._closing, self.interval)
                batch = list(self._work)
                self._work.clear()
                closing = self._closing
            self._run_round(batch)
            if closing:
                return

    def _run_round(self, batch: list[Callable[[], None]]) -> None:
        for done, work in enumerate(batch):
            try:
                work()
            except Exception:  # one failed shadow must not stop the others
                log.exception("%s work failed", self.name)
            except BaseException:  # the thread stops: count what it leaves undone
                metrics.SHADOW_DROPPED.inc(len(batch) - done)
                log.critical("%s thread stopped; %d left undone", self.name, len(batch) - done)
                raise
