"""Version `<data_dir>/accepted/` with DVC, so every model can name the exact data it used.

The repository itself (no SCM, one lock per data folder) is set up by `dvc_repo.py`.

A *data version* is the `.dir` md5 DVC records in `accepted.dvc`. Without git there is no history
of that file, so each commit archives it as `versions/<md5>.dvc` (hidden from DVC by
`.dvcignore`, or DVC would see every archive as a stage with the same output and refuse to work).
The cache and the remote keep every version's files: never run `dvc gc` on this repository.

Writers must put files into `accepted/` atomically (write a hidden temp file, then `os.replace`):
hidden files there are ignored, so a half-written file never enters a version.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bioprocessml.errors import VersioningError
from bioprocessml.ingest.dvc_repo import data_lock, dvc_step, ensure_repo_locked, open_repo

if TYPE_CHECKING:
    from dvc.repo import Repo

logger = logging.getLogger(__name__)

ACCEPTED = "accepted"
DVC_FILE = "accepted.dvc"
VERSIONS = "versions"
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
    with data_lock(data_dir):
        ensure_repo_locked(data_dir, remote)
        with open_repo(data_dir) as repo:
            with dvc_step(f"dvc add {accepted}"):
                repo.add([str(accepted)])
            version = _read_dvc_file(data_dir / DVC_FILE)
            _archive(data_dir, version)
            with dvc_step(f"dvc push of data version {version.short} to {remote}"):
                repo.push(targets=[str(data_dir / DVC_FILE)])
    logger.info("data version %s: %d files, %d bytes", version.short, version.nfiles, version.size)
    return version


def current_version(data_dir: Path) -> DataVersion | None:
    """The version last committed (None before the first commit). Read under the lock
    because DVC rewrites accepted.dvc in place."""
    path = data_dir.resolve() / DVC_FILE
    if not path.exists():
        return None
    with data_lock(path.parent):
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
        with dvc_step(step):
            repo.cloud.pull([HashInfo("md5", version.md5)])
    try:
        tree = Tree.load(odb, HashInfo("md5", version.md5))
    except (FileNotFoundError, ObjectFormatError) as exc:
        raise VersioningError(f"{step}: its file list is in neither cache nor remote") from exc
    entries = [("/".join(key), hash_info.value) for key, _meta, hash_info in tree]
    missing = [HashInfo("md5", oid) for _, oid in entries if oid and not odb.exists(oid)]
    if missing:
        with dvc_step(step):
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
    with data_lock(data_dir), open_repo(data_dir) as repo:
        files = _cached_files(repo, version)
    restored = []
    for rel, cached in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target)
        restored.append(target)
    return sorted(restored)
