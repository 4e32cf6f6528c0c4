"""Whether a run's process (recovery) or a stack's process (`up`) still lives must not depend on
the wall clock: a VM resumed after a freeze (or an NTP step) shifts every epoch start time."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from bioprocessml.stack.processes import ProcessRecord, start_of
from bioprocessml.stack.recovery import owner_alive, process_mark

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


def test_live_process_stays_alive_when_the_clock_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    mark, started = process_mark(), psutil.Process().create_time()
    me = psutil.Process()
    record = ProcessRecord(name="me", pid=me.pid, started=start_of(me), args=[])
    real = psutil._pslinux.boot_time  # type: ignore[attr-defined]
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: real() + 33.0)
    assert psutil.Process().create_time() - started > 30  # the epoch start time moved
    assert owner_alive(mark)
    assert ProcessRecord.model_validate_json(record.model_dump_json()).alive()


def test_dead_or_replaced_process_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    mark = process_mark(child.pid)
    assert owner_alive(mark)
    child.wait()
    assert not owner_alive(mark)
    host, pid, started = process_mark().split(":")
    assert not owner_alive(f"{host}:{pid}:t{int(started[1:]) + 1}")  # same pid, other process
    assert not owner_alive(None)
    old = ProcessRecord(name="me", pid=int(pid), started=psutil.Process().create_time(), args=[])
    assert ProcessRecord.model_validate_json(old.model_dump_json()).alive()  # a record from before
