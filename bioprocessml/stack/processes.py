"""The stack's processes as whole groups: start each in its own session, record it so a second
`up` recognises it, stop it with everything it started.

A recorded pid alone is not enough: MLflow's server leaves uvicorn and huey consumers behind, and
a Prefect process worker starts each flow run in a session of its own. So every process of a
stack carries `BIOPROCESSML_STACK_ID` in its environment (children inherit it), and stopping the
stack also ends any process that still carries the mark, whatever its group.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
from pydantic import BaseModel

log = logging.getLogger(__name__)
STACK_MARK = "BIOPROCESSML_STACK_ID"


class ProcessRecord(BaseModel):
    """A started process: its pid is its process group and session; `started` tells it apart
    from a later process that got the same pid."""

    name: str
    pid: int
    started: str | float  # `start_of` (epoch seconds in records written before it)
    args: list[str]
    port: int | None = None

    def alive(self) -> bool:
        return still_running(self.pid, self.started)


def start_of(proc: psutil.Process) -> str:
    """When a process started: on Linux its clock ticks since boot (`t<ticks>`, fixed for its
    life), elsewhere its start time in epoch seconds. The epoch start time moves when the wall
    clock is stepped (psutil adds the boot time, which the kernel derives from the wall clock):
    after the whole VM froze for ~33 s in a benchmark run, every start time had moved and
    recovery took the live runner for a dead one, marking its running flows crashed."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return f"{proc.create_time():.2f}"
    return "t" + stat.rpartition(")")[2].split()[19]  # field 22, starttime


def still_running(pid: int, started: str | float | None) -> bool:
    """Is the process that started at `started` (from `start_of`, or epoch seconds; None: any)
    as `pid` still running, not a zombie and not a later process that got the same pid?"""
    try:
        proc = psutil.Process(pid)
        if isinstance(started, str) and started.startswith("t"):
            same = started == start_of(proc)
        else:
            same = started is None or abs(proc.create_time() - float(started)) < 1
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (ValueError, psutil.Error):
        return False


def stack_id(state_dir: Path) -> str:
    """One id per state folder: the mark its processes carry."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]


def _record_file(state_dir: Path, name: str) -> Path:
    return state_dir / "pids" / f"{name}.json"


def read_record(state_dir: Path, name: str) -> ProcessRecord | None:
    path = _record_file(state_dir, name)
    try:
        return ProcessRecord.model_validate_json(path.read_text())
    except (OSError, ValueError):
        return None


def records(state_dir: Path) -> list[ProcessRecord]:
    found = [read_record(state_dir, p.stem) for p in (state_dir / "pids").glob("*.json")]
    return [r for r in found if r is not None]


def forget(state_dir: Path, name: str) -> None:
    _record_file(state_dir, name).unlink(missing_ok=True)


def spawn(
    state_dir: Path, name: str, args: list[str], cwd: Path, env: dict[str, str],
    port: int | None = None,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """Start `args` in a new session with its output in `<state>/logs/<name>.log`, and record it
    (written atomically: a reader never sees half a record)."""
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    target = _record_file(state_dir, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    started = start_of(psutil.Process(proc.pid))
    record = ProcessRecord(name=name, pid=proc.pid, started=started, args=args, port=port)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(record.model_dump_json())
    os.replace(tmp, target)
    return proc


def marked(mark: str, exclude: Iterable[int] = ()) -> list[psutil.Process]:
    """Every process whose environment carries this stack's mark (but not `exclude`)."""
    skip = {os.getpid(), *exclude}
    skip.update(p.pid for p in psutil.Process().parents())
    found = []
    for proc in psutil.process_iter():
        if proc.pid in skip:
            continue
        try:
            if proc.environ().get(STACK_MARK) == mark:
                found.append(proc)
        except psutil.Error:
            continue  # gone, or not ours to read
    return found


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != "zombie":
                members.append(proc)
        except (OSError, psutil.Error):
            continue
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(pgid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: nothing to reap
        os.waitpid(pid, os.WNOHANG)


def stop_group(pgid: int, grace: float = 10.0) -> bool:
    """SIGTERM the whole group, SIGKILL whatever is left after `grace` s; True if it existed."""
    if not group_members(pgid):
        _reap(pgid)
        return False
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(pgid)
        if not group_members(pgid):
            return True
        time.sleep(0.1)
    log.warning("process group %d outlived SIGTERM by %.0f s: SIGKILL", pgid, grace)
    _signal_group(pgid, signal.SIGKILL)
    _wait_gone(lambda: group_members(pgid), 5.0)
    _reap(pgid)
    return True


def kill_marked(mark: str, grace: float = 5.0) -> list[str]:
    """End every process that still carries the mark (flow runs in sessions of their own,
    children of a killed leader): SIGTERM, then SIGKILL. Returns what it found."""
    found = marked(mark)
    names = [f"{p.pid} ({_name(p)})" for p in found]
    for proc in found:
        _send(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(found, timeout=grace)
    for proc in alive:
        _send(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    for proc in found:
        _reap(proc.pid)
    return names


def _send(proc: psutil.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(psutil.Error):  # already gone
        proc.send_signal(sig)


def _name(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()[:3])[:80]
    except psutil.Error:
        return "?"


def _wait_gone(probe: Callable[[], list[psutil.Process]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and probe():
        time.sleep(0.1)


def port_owner(port: int, host: str = "127.0.0.1") -> str | None:
    """Who listens on `port` (a description), or None when it is free to bind."""
    import socket

    with socket.socket() as sock:
        # As the servers bind: a port whose last connections linger in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return None
        except OSError:
            pass
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return "an unknown process"
            try:
                return f"pid {conn.pid} ({_name(psutil.Process(conn.pid))})"
            except psutil.Error:
                return f"pid {conn.pid}"
    return "another program"


def listening(pids: Iterable[int]) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket these processes listen on."""
    wanted = set(pids)
    return [
        (c.pid, c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in wanted and c.laddr
    ]
