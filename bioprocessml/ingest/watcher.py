"""Watch the incoming folder and announce each file once it is completely written.

"Complete" means: its size and modification time have not changed for `settle` seconds. Files
still being copied under a temporary name (`.part`, `.tmp`, hidden files) are ignored until they
are renamed. A periodic rescan backs up the filesystem notifications.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger(__name__)
TEMPORARY_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".swp")

OnReady = Callable[[str, str, int], None]  # (path relative to incoming, sha256, size)


def is_candidate(path: Path) -> bool:
    return not path.name.startswith(".") and not path.name.endswith(TEMPORARY_SUFFIXES)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    since: float


class ArrivalWatcher(FileSystemEventHandler):
    def __init__(self, incoming: Path, on_ready: OnReady, settle: float = 1.0) -> None:
        self.incoming = incoming.resolve()
        self.on_ready = on_ready
        self.settle = settle
        self.pending: dict[Path, _Pending] = {}
        self.announced: dict[Path, str] = {}
        self._lock = threading.Lock()

    # watchdog callbacks (observer thread)
    def on_created(self, event: FileSystemEvent) -> None:
        self.notice(Path(str(event.src_path)))

    def on_modified(self, event: FileSystemEvent) -> None:
        self.notice(Path(str(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        self.notice(Path(str(event.dest_path)))

    def notice(self, path: Path) -> None:
        if not is_candidate(path):
            return
        with self._lock:
            self.pending[path] = _Pending(-1, -1, time.monotonic())

    def scan(self) -> None:
        """Pick up files that are there already (at start, and as a backstop)."""
        for path in self.incoming.rglob("*"):
            if path.is_file() and path not in self.pending and path not in self.announced:
                self.notice(path)
        # Forget files that have left incoming/, so a new file of the same name is announced.
        self.announced = {p: s for p, s in self.announced.items() if p.exists()}

    def poll(self, now: float | None = None) -> list[str]:
        """Announce every pending file that has been stable for `settle` seconds."""
        now = time.monotonic() if now is None else now
        ready = []
        with self._lock:
            items = list(self.pending.items())
        for path, seen in items:
            try:
                stat = path.stat()
            except FileNotFoundError:
                self._drop(path)
                continue
            if not path.is_file():
                self._drop(path)
            elif (stat.st_size, stat.st_mtime_ns) != (seen.size, seen.mtime_ns):
                with self._lock:
                    self.pending[path] = _Pending(stat.st_size, stat.st_mtime_ns, now)
            elif now - seen.since >= self.settle:
                self._drop(path)
                if self._announce(path, stat.st_size):
                    ready.append(str(path.relative_to(self.incoming)))
        return ready

    def _drop(self, path: Path) -> None:
        with self._lock:
            self.pending.pop(path, None)

    def _announce(self, path: Path, size: int) -> bool:
        digest = file_sha256(path)
        if self.announced.get(path) == digest:
            return False
        try:
            self.on_ready(str(path.relative_to(self.incoming)), digest, size)
        except Exception as exc:  # e.g. the Prefect API is down: keep the file pending, retry
            log.warning("could not announce %s (%s: %s); retrying", path, type(exc).__name__, exc)
            self.notice(path)
            return False
        self.announced[path] = digest
        return True

    def run(self, stop: threading.Event, interval: float = 0.2, rescan: float = 10.0) -> None:
        """Watch until `stop` is set."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(self, str(self.incoming), recursive=True)
        observer.start()
        try:
            self.scan()
            last_scan = time.monotonic()
            while not stop.wait(interval):
                self.poll()
                if time.monotonic() - last_scan > rescan:
                    self.scan()
                    last_scan = time.monotonic()
        finally:
            observer.stop()
            observer.join()
