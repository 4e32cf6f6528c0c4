"""The DVC repository under a data folder: one lock, DVC kept quiet, its errors translated.

The DVC repository is rooted at `data_dir` and made with `dvc init --no-scm`: `data_dir` often
sits inside someone else's git repository (the project's `data/`) or in a temp dir, and we must
never stage or commit there. (`--subdir` is the alternative DVC offers inside a git repo, but it
binds DVC to that git repo, whose index `dvc init` then touches; DVC forbids combining the two.)
All DVC work runs under one file lock per `data_dir`, so concurrent ingest processes (or threads)
serialise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from bioprocessml.errors import VersioningError

if TYPE_CHECKING:
    from dvc.repo import Repo

logger = logging.getLogger(__name__)

LOCK_FILE = ".versioning.lock"
REMOTE_NAME = "storage"
LOCK_TIMEOUT_S = 600.0
# Archived versions (versioning.py) are not stages; writers' hidden temp files are not data.
DVCIGNORE_LINES = ("/versions/", "/accepted/**/.*")
# What `dvc init` writes into .dvc/ inside a git repo, so an enclosing repo ignores the cache.
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
_DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")


@contextmanager
def data_lock(data_dir: Path) -> Iterator[None]:
    """Serialise all DVC work on `data_dir` across processes and threads (flock-based)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(data_dir / LOCK_FILE, timeout=LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise VersioningError(
            f"waited {LOCK_TIMEOUT_S:.0f} s for {data_dir / LOCK_FILE}: another process is "
            "still versioning this data folder"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def quiet_dvc() -> Iterator[None]:
    """Keep DVC from printing while our code runs.

    Importing dvc attaches handlers that write to the stdout/stderr of import time, which
    `redirect_stdout` cannot catch. We detach them and raise the level to WARNING (which also
    disables DVC's progress bars), so warnings reach the application's logging instead. The
    change is process-wide but brief, and only ever made under `data_lock`.
    """
    from dvc.logger import LoggerHandler, set_loggers_level

    detached: list[tuple[logging.Logger, logging.Handler]] = []
    for name in _DVC_LOGGERS:
        dvc_logger = logging.getLogger(name)
        for handler in [h for h in dvc_logger.handlers if isinstance(h, LoggerHandler)]:
            dvc_logger.removeHandler(handler)
            detached.append((dvc_logger, handler))
    try:
        with set_loggers_level(logging.WARNING):
            yield
    finally:
        for dvc_logger, handler in detached:
            dvc_logger.addHandler(handler)


@contextmanager
def dvc_step(what: str) -> Iterator[None]:
    """Turn DVC's exceptions into a VersioningError that says which step failed."""
    from dvc.exceptions import DvcException

    try:
        yield
    except DvcException as exc:
        raise VersioningError(f"{what} failed: {exc}") from exc


@contextmanager
def open_repo(data_dir: Path) -> Iterator[Repo]:
    with quiet_dvc():
        from dvc.repo import Repo

        with dvc_step(f"opening the DVC repository in {data_dir}"):
            repo = Repo(str(data_dir))
        try:
            yield repo
        finally:
            repo.close()


def _ensure_lines(path: Path, lines: tuple[str, ...]) -> None:
    text = path.read_text() if path.exists() else ""
    missing = [line for line in lines if line not in text.splitlines()]
    if missing:
        sep = "" if not text or text.endswith("\n") else "\n"
        path.write_text(text + sep + "\n".join(missing) + "\n")


def _configure(repo: Repo, remote: Path) -> None:
    """Telemetry off, our remote the default; write the config only when it changes."""
    url = str(remote.resolve())
    core = repo.config["core"]
    current = repo.config["remote"].get(REMOTE_NAME, {}).get("url")
    wanted = (False, False, REMOTE_NAME, url)
    if (core.get("analytics"), core.get("check_update"), core.get("remote"), current) == wanted:
        return
    with repo.config.edit("repo") as conf:
        # check_update: the dvc CLI would otherwise ask updater.dvc.org for new releases.
        conf["core"].update(analytics=False, check_update=False, remote=REMOTE_NAME)
        conf["remote"][REMOTE_NAME] = {"url": url}
    logger.info("DVC repository %s: default remote %r -> %s", repo.root_dir, REMOTE_NAME, url)


def ensure_repo_locked(data_dir: Path, remote: Path) -> None:
    dvc_dir = data_dir / ".dvc"
    if not dvc_dir.is_dir():
        with quiet_dvc(), dvc_step(f"dvc init --no-scm in {data_dir}"):
            from dvc.repo import Repo

            Repo.init(str(data_dir), no_scm=True).close()
        logger.info("initialised a DVC repository (no SCM) in %s", data_dir)
    _ensure_lines(data_dir / ".dvcignore", DVCIGNORE_LINES)
    if not (dvc_dir / ".gitignore").exists():
        (dvc_dir / ".gitignore").write_text(DVC_GITIGNORE)
    remote.mkdir(parents=True, exist_ok=True)
    with open_repo(data_dir) as repo, dvc_step("configuring the DVC repository"):
        _configure(repo, remote)


def ensure_repo(data_dir: Path, remote: Path) -> None:
    """Make `data_dir` a DVC repository (no SCM, telemetry off) whose default remote is
    `remote`, a local directory. Idempotent; a changed `remote` replaces the old one."""
    data_dir = data_dir.resolve()
    with data_lock(data_dir):
        ensure_repo_locked(data_dir, remote)
