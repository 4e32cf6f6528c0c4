"""Which requests the other model shadows: the first of each batch and task in every
`rollout.shadow_every_h` hours of batch time, not every request.

The rollout's evidence is a finished batch's mean error of both models over the requests both
answered (`prediction_log.paired_batch_error`, against assays interpolated in time, often many
hours apart). Requests spread evenly over batch time sample that error over the whole batch and
weigh its phases alike whatever the client's call rate; a client that follows a batch row by
row, one row a minute, would otherwise cost a challenger prediction a minute for one more point
of the same curve. The served answer is logged for every request as before.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

from models.base import Task


class ShadowSchedule:
    """Remembers, per (task, batch, shadowing model version), the batch-time slot last
    shadowed; at most `capacity` keys (least recently asked forgotten first)."""

    def __init__(self, every_h: float, capacity: int = 10_000) -> None:
        self.every_h, self.capacity = every_h, capacity
        self._slots: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._lock = threading.Lock()  # requests are answered from several threads

    def due(self, task: Task, batch_id: str, version: str, time_h: float) -> bool:
        """True when this request is the first of its batch-time slot (or shadowing is not
        thinned: every_h = 0). A history that went back in time starts a new slot."""
        if self.every_h <= 0 or not math.isfinite(time_h):
            return True
        key, slot = (task, batch_id, version), math.floor(time_h / self.every_h)
        with self._lock:
            seen = self._slots.get(key)
            self._slots[key] = slot
            self._slots.move_to_end(key)
            while len(self._slots) > self.capacity:
                self._slots.popitem(last=False)
        return seen != slot
