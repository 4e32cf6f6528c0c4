"""The incoming-folder watcher announces complete files once, never half-written ones."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioprocessml.ingest.watcher import ArrivalWatcher

pytestmark = pytest.mark.unit

Announced = list[tuple[str, str, int]]


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[tuple[Path, Announced]]:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "already-there.csv").write_text("a,b\n1,2\n")
    seen: Announced = []
    watcher = ArrivalWatcher(incoming, lambda *args: seen.append(args), settle=0.6)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop, 0.05, 1.0))
    thread.start()
    yield incoming, seen
    stop.set()
    thread.join(timeout=10)


def wait_for(seen: Announced, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_slow_copy_is_announced_once_when_complete(watching: tuple[Path, Announced]) -> None:
    incoming, seen = watching
    wait_for(seen, 1)
    assert [s[0] for s in seen] == ["already-there.csv"]
    chunks = [f"row {i}\n".encode() * 500 for i in range(6)]
    with (incoming / "slow.csv").open("wb") as handle:
        for chunk in chunks:  # pauses shorter than the settle time
            handle.write(chunk)
            handle.flush()
            time.sleep(0.3)
    wait_for(seen, 2)
    time.sleep(1.0)
    data = b"".join(chunks)
    assert seen[1:] == [("slow.csv", hashlib.sha256(data).hexdigest(), len(data))]


def test_temporary_names_wait_for_rename(watching: tuple[Path, Announced]) -> None:
    incoming, seen = watching
    wait_for(seen, 1)
    (incoming / "copy.csv.part").write_text("x\n")
    (incoming / ".hidden.csv").write_text("x\n")
    time.sleep(1.5)
    assert len(seen) == 1
    (incoming / "copy.csv.part").rename(incoming / "sub-batch.csv")
    wait_for(seen, 2)
    assert seen[-1][0] == "sub-batch.csv"


def test_new_content_under_same_name_is_announced_again(tmp_path: Path) -> None:
    seen: Announced = []
    watcher = ArrivalWatcher(tmp_path, lambda *args: seen.append(args), settle=0.0)
    (tmp_path / "b.csv").write_text("one\n")
    watcher.scan()
    watcher.poll()
    watcher.poll()
    watcher.scan()  # still there, same content: not again
    watcher.poll()
    watcher.poll()
    (tmp_path / "b.csv").write_text("two\n")
    watcher.notice(tmp_path / "b.csv")
    watcher.poll()
    watcher.poll()
    assert [s[1][:8] for s in seen] == [
        hashlib.sha256(b"one\n").hexdigest()[:8],
        hashlib.sha256(b"two\n").hexdigest()[:8],
    ]


def test_failed_announcement_is_retried(tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(relative: str, sha256: str, size: int) -> None:
        calls.append(relative)
        if len(calls) == 1:
            raise ConnectionError("Prefect API down")

    watcher = ArrivalWatcher(tmp_path, flaky, settle=0.0)
    (tmp_path / "b.csv").write_text("x\n")
    watcher.scan()
    for _ in range(4):
        watcher.poll()
    assert calls == ["b.csv", "b.csv"]
    assert watcher.announced
