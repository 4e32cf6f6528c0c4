"""Version `<data_dir>/accepted/` with DVC, so every model can name the exact data it used.

The DVC repository is rooted at `data_dir` and made with `dvc init --no-scm`: `data_dir` often
sits inside someone else's git repository (the project's `data/`) or in a temp dir, and we must
never stage or commit there. (`--subdir` is the alternative DVC offers inside a git repo, but it
binds DVC to that git repo, whose index `dvc init` then touches; DVC forbids combining the two.)

A *data version* is the `.dir` md5 DVC records in `accepted.dvc`. Without git there is no history
of that file, so each commit archives it as `versions/<md5>.dvc` (hidden from DVC by
`.dvcignore`, or DVC would see every archive as a stage with the same output and refuse to work).
The cache and the remote keep every version's files: never run `dvc gc` on this repository.

Writers must put files into `accepted/` atomically (write a hidden temp file, then `os.replace`):
hidden files there are ignored, so a half-written file never enters a version. All DVC work runs
under one file lock per `data_dir`, so concurrent ingest processes (or threads) serialise.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field

from bioprocessml.errors import VersioningError

if TYPE_CHECKING:
    from dvc.repo import Repo

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
DVC_FILE = "accepted.dvc"
VERSIONS = "versions"
LOCK_FILE = ".versioning.lock"
REMOTE_NAME = "storage"
LOCK_TIMEOUT_S = 600.0
# Archived versions are not stages; writers' hidden temp files are not data.
DVCIGNORE_LINES = ("/versions/", "/accepted/**/.*")
# What `dvc init` writes into .dvc/ inside a git repo, so an enclosing repo ignores the cache.
DVC_GITIGNORE = "/config.local\n/tmp\n/cache\n"
_DVC_LOGGERS = ("dvc", "dvc_objects", "dvc_data")
_HEX = re.compile(r"^[0-9a-f]+$")


class DataVersion(BaseModel):
    """One state of `accepted/`, as DVC hashed it."""

    model_config = ConfigDict(frozen=True)

    md5: str = Field(pattern=r"^[0-9a-f]{32}\.dir$", description="DVC's directory hash")
    nfiles: int = Field(ge=0)
    size: int = Field(ge=0, description="bytes of all files")

    @property
    def short(self) -> str:
        """First 12 hex characters: enough to be unique in tags and logs."""
        return self.md5[:12]


# --- plumbing: lock, quiet DVC, error translation ---


@contextmanager
def _lock(data_dir: Path) -> Iterator[None]:
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
def _quiet_dvc() -> Iterator[None]:
    """Keep DVC from printing while our code runs.

    Importing dvc attaches handlers that write to the stdout/stderr of import time, which
    `redirect_stdout` cannot catch. We detach them and raise the level to WARNING (which also
    disables DVC's progress bars), so warnings reach the application's logging instead. The
    change is process-wide but brief, and only ever made under `_lock`.
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
def _dvc_step(what: str) -> Iterator[None]:
    """Turn DVC's exceptions into a VersioningError that says which step failed."""
    from dvc.exceptions import DvcException

    try:
        yield
    except DvcException as exc:
        raise VersioningError(f"{what} failed: {exc}") from exc


@contextmanager
def _open_repo(data_dir: Path) -> Iterator[Repo]:
    with _quiet_dvc():
        from dvc.repo import Repo

        with _dvc_step(f"opening the DVC repository in {data_dir}"):
            repo = Repo(str(data_dir))
        try:
            yield repo
        finally:
            repo.close()


# --- repository set-up ---


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


def _ensure_repo_locked(data_dir: Path, remote: Path) -> None:
    dvc_dir = data_dir / ".dvc"
    if not dvc_dir.is_dir():
        with _quiet_dvc(), _dvc_step(f"dvc init --no-scm in {data_dir}"):
            from dvc.repo import Repo

            Repo.init(str(data_dir), no_scm=True).close()
        logger.info("initialised a DVC repository (no SCM) in %s", data_dir)
    _ensure_lines(data_dir / ".dvcignore", DVCIGNORE_LINES)
    if not (dvc_dir / ".gitignore").exists():
        (dvc_dir / ".gitignore").write_text(DVC_GITIGNORE)
    remote.mkdir(parents=True, exist_ok=True)
    with _open_repo(data_dir) as repo, _dvc_step("configuring the DVC repository"):
        _configure(repo, remote)


def ensure_repo(data_dir: Path, remote: Path) -> None:
    """Make `data_dir` a DVC repository (no SCM, telemetry off) whose default remote is
    `remote`, a local directory. Idempotent; a changed `remote` replaces the old one."""
    data_dir = data_dir.resolve()
    with _lock(data_dir):
        _ensure_repo_locked(data_dir, remote)


# --- versions ---


def _read_dvc_file(path: Path) -> DataVersion:
    try:
        out = yaml.safe_load(path.read_text())["outs"][0]
        return DataVersion(md5=out["md5"], nfiles=out["nfiles"], size=out["size"])
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise VersioningError(f"{path}: not a readable DVC file of a directory ({exc})") from None


def _archive_path(data_dir: Path, version: DataVersion) -> Path:
    return data_dir / VERSIONS / f"{version.md5.removesuffix('.dir')}.dvc"


def _archive(data_dir: Path, version: DataVersion) -> None:
    """Copy accepted.dvc to versions/ atomically; an existing archive keeps its time."""
    target = _archive_path(data_dir, version)
    if target.exists():
        return
    target.parent.mkdir(exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, prefix=".tmp-") as tmp:
        tmp.write((data_dir / DVC_FILE).read_bytes())
    os.replace(tmp.name, target)


def commit_version(data_dir: Path, remote: Path) -> DataVersion:
    """Record the current content of `accepted/` as a data version and push it to `remote`.

    Everything runs under the lock, so a caller that put its file into `accepted/` before
    calling gets a version that contains it, even when other processes commit concurrently.
    """
    data_dir = data_dir.resolve()
    accepted = data_dir / ACCEPTED
    if not accepted.is_dir():
        raise VersioningError(f"{accepted} does not exist: there is nothing to version")
    with _lock(data_dir):
        _ensure_repo_locked(data_dir, remote)
        with _open_repo(data_dir) as repo:
            with _dvc_step(f"dvc add {accepted}"):
                repo.add([str(accepted)])
            version = _read_dvc_file(data_dir / DVC_FILE)
            _archive(data_dir, version)
            with _dvc_step(f"dvc push of data version {version.short} to {remote}"):
                repo.push(targets=[str(data_dir / DVC_FILE)])
    logger.info("data version %s: %d files, %d bytes", version.short, version.nfiles, version.size)
    return version


def current_version(data_dir: Path) -> DataVersion | None:
    """The version last committed (None before the first commit). Read under the lock
    because DVC rewrites accepted.dvc in place."""
    path = data_dir.resolve() / DVC_FILE
    if not path.exists():
        return None
    with _lock(path.parent):
        return _read_dvc_file(path)


def list_versions(data_dir: Path) -> list[DataVersion]:
    """Every committed version, oldest first (by when it was first committed)."""
    archives = sorted((data_dir / VERSIONS).glob("*.dvc"), key=lambda p: p.stat().st_mtime_ns)
    return [_read_dvc_file(path) for path in archives]


# --- restore ---


def _find_version(data_dir: Path, md5: str) -> DataVersion:
    """Resolve a full md5 (with or without `.dir`) or a unique prefix, e.g. `DataVersion.short`."""
    ref = md5.strip().lower().removesuffix(".dir")
    versions = data_dir / VERSIONS
    matches = sorted(versions.glob(f"{ref}*.dvc")) if _HEX.match(ref) else []
    if not matches:
        known = len(list(versions.glob("*.dvc")))
        raise VersioningError(
            f"unknown data version {md5!r}: no archive {versions}/{ref}….dvc "
            f"({known} versions known in {data_dir})"
        )
    if len(matches) > 1:
        raise VersioningError(f"data version {md5!r} is ambiguous: {len(matches)} versions match")
    return _read_dvc_file(matches[0])


def _cached_files(repo: Repo, version: DataVersion) -> list[tuple[str, Path]]:
    """(relative path, cache path) of each file of `version`, pulling from the remote
    whatever the local cache lacks: first the directory listing, then the files."""
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.tree import Tree
    from dvc_objects.errors import ObjectFormatError

    odb = repo.cache.local
    step = f"dvc pull of data version {version.short}"
    if not odb.exists(version.md5):
        with _dvc_step(step):
            repo.cloud.pull([HashInfo("md5", version.md5)])
    try:
        tree = Tree.load(odb, HashInfo("md5", version.md5))
    except (FileNotFoundError, ObjectFormatError) as exc:
        raise VersioningError(f"{step}: its file list is in neither cache nor remote") from exc
    entries = [("/".join(key), hash_info.value) for key, _meta, hash_info in tree]
    missing = [HashInfo("md5", oid) for _, oid in entries if oid and not odb.exists(oid)]
    if missing:
        with _dvc_step(step):
            repo.cloud.pull(missing)
    lost = [rel for rel, oid in entries if not oid or not odb.exists(oid)]
    if lost:
        raise VersioningError(f"{step}: {len(lost)} files in neither cache nor remote: {lost[:5]}")
    return [(rel, Path(odb.oid_to_path(oid))) for rel, oid in entries]


def restore_version(data_dir: Path, md5: str, dest: Path) -> list[Path]:
    """Write the files of data version `md5` into `dest` (new or empty) and return their paths.

    Works from the local cache and pulls from the remote what it lacks, so it does not depend
    on the current content of `accepted/`. Accepts a unique prefix such as `DataVersion.short`.
    """
    data_dir = data_dir.resolve()
    version = _find_version(data_dir, md5)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise VersioningError(f"cannot restore data version {version.short}: {dest} is not empty")
    with _lock(data_dir), _open_repo(data_dir) as repo:
        files = _cached_files(repo, version)
    restored = []
    for rel, cached in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        restored.append(target)
    return sorted(restored)
