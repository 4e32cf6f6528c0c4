"""`up` on a running or half-running stack starts only what is missing, a taken port is an
error, every server listens on 127.0.0.1, and `down` leaves no process of the stack alive.
(This module runs last in the session: its final test stops the shared stack.)"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psutil
import pytest

from bioprocessml.events import BATCH_ARRIVED
from bioprocessml.settings import Serving, Settings
from bioprocessml.stack import processes
from bioprocessml.stack.servers import StackError, down, free_port, up
from tests.faults.conftest import cheap_files, entries_for, kill9, put
from tests.stack import events, wait_until


def pids(settings: Settings) -> dict[str, int]:
    return {r.name: r.pid for r in processes.records(settings.state_dir)}


def commands(settings: Settings, word: str) -> list[psutil.Process]:
    """Marked processes whose command line runs `bioprocessml <word>`."""
    mark = processes.stack_id(settings.state_dir)
    return [p for p in processes.marked(mark) if word in p.cmdline()[1:3]]


def arrival_events(settings: Settings, name: str) -> int:
    return len([e for e in events(settings, BATCH_ARRIVED) if e["payload"].get("path") == name])


def test_up_twice_and_after_a_killed_runner_keeps_one_of_each(
    stack: Settings, tmp_path: Path, recovery_times: dict[str, float]
) -> None:
    before = pids(stack)
    assert {"prefect-server", "runner", "watcher", "bentoml-service"} <= set(before)
    up(stack, ui=False)
    assert pids(stack) == before, "a second up starts nothing"
    killed = kill9(stack, "runner")
    started = time.monotonic()
    up(stack, ui=False)
    recovery_times["runner killed: up until all running (s)"] = round(time.monotonic() - started, 1)
    after = pids(stack)
    assert after["runner"] != killed and {k: v for k, v in after.items() if k != "runner"} == {
        k: v for k, v in before.items() if k != "runner"
    }
    assert len(commands(stack, "runner")) == 1 and len(commands(stack, "watch")) == 1
    [probe] = cheap_files(tmp_path, "once", 1)
    put(probe, stack.incoming_dir)
    wait_until(lambda: entries_for(stack, {probe.name}), 120, "the verdict")
    wait_until(lambda: arrival_events(stack, probe.name) >= 1, 30, "the arrival event")
    time.sleep(2)
    assert arrival_events(stack, probe.name) == 1, "one announcement per file"
    assert len(entries_for(stack, {probe.name})) == 1


def test_up_fails_loudly_when_a_port_is_taken(stack: Settings, tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = Settings(
            state_dir=tmp_path / "state", data_dir=tmp_path / "data",
            prefect_api_url=f"http://127.0.0.1:{port}/api", serving=Serving(port=free_port()),
        )  # fmt: skip
        with pytest.raises(StackError, match=f"port {port} is taken by pid"):
            up(other, ui=False)
    assert not processes.records(other.state_dir), "nothing was started"


def test_every_server_listens_on_localhost_only(stack: Settings) -> None:
    mark = processes.stack_id(stack.state_dir)
    sockets = processes.listening(p.pid for p in processes.marked(mark))
    assert sockets, "the stack's servers listen somewhere"
    assert {address for _, address, _ in sockets} == {"127.0.0.1"}, sockets


def test_down_leaves_no_process_of_the_stack(stack: Settings) -> None:
    mark = processes.stack_id(stack.state_dir)
    groups = {r.pid for r in processes.records(stack.state_dir)}
    groups |= {p.pid for p in processes.marked(mark)}
    groups = {g for g in (_pgid(p) for p in groups) if g is not None}
    assert len(groups) >= 4
    stopped = down(stack)
    assert {"prefect-server", "runner", "watcher", "bentoml-service"} <= set(stopped)
    left = {g: processes.group_members(g) for g in groups}
    assert not any(left.values()), left
    assert not processes.marked(mark)
    assert not processes.records(stack.state_dir)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
