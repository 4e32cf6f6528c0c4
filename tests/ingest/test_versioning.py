"""Versioning accepted/ with a real DVC repository (no SCM) and a local remote, in tmp dirs."""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bioprocessml.errors import VersioningError
from bioprocessml.ingest.dvc_repo import DVCIGNORE_LINES, REMOTE_NAME, ensure_repo
from bioprocessml.ingest.versioning import (
    DataVersion,
    commit_version,
    current_version,
    list_versions,
    restore_version,
)


@pytest.fixture(autouse=True)
def _site_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DVC keeps per-repo state under /var/tmp/dvc by default; keep test repos' state in tmp."""
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    (tmp_path / "data" / "accepted").mkdir(parents=True)
    return tmp_path / "data"


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return tmp_path / "remote"


def write_batch(data_dir: Path, name: str, rows: int = 3) -> bytes:
    content = "time,biomass\n" + "".join(f"{i},{i * 0.5:.1f}\n" for i in range(rows))
    (data_dir / "accepted" / name).write_text(content)
    return content.encode()


def remote_files(remote: Path) -> list[Path]:
    return [p for p in remote.rglob("*") if p.is_file()]


def test_ensure_repo_idempotent_offline_with_remote(data_dir: Path, remote: Path) -> None:
    from dvc.repo import Repo

    ensure_repo(data_dir, remote)
    config = data_dir / ".dvc" / "config"
    first = config.read_bytes(), config.stat().st_mtime_ns
    ensure_repo(data_dir, remote)
    assert (config.read_bytes(), config.stat().st_mtime_ns) == first, "second call rewrote config"
    ignore = (data_dir / ".dvcignore").read_text().splitlines()
    assert all(ignore.count(line) == 1 for line in DVCIGNORE_LINES)
    with Repo(str(data_dir)) as repo:
        assert repo.config["core"]["analytics"] is False
        assert repo.config["core"]["no_scm"] is True
        assert repo.config["core"]["remote"] == REMOTE_NAME
        assert repo.config["remote"][REMOTE_NAME]["url"] == str(remote.resolve())
    other = remote.parent / "other-remote"
    ensure_repo(data_dir, other)
    with Repo(str(data_dir)) as repo:
        assert repo.config["remote"][REMOTE_NAME]["url"] == str(other.resolve())


def test_two_versions_listed_and_pushed(data_dir: Path, remote: Path) -> None:
    from dvc.repo import Repo

    assert current_version(data_dir) is None and list_versions(data_dir) == []
    write_batch(data_dir, "B001.csv")
    v1 = commit_version(data_dir, remote)
    write_batch(data_dir, "B002.csv", rows=5)
    v2 = commit_version(data_dir, remote)
    assert v1.md5 != v2.md5 and v1.md5.endswith(".dir")
    assert (v1.nfiles, v2.nfiles) == (1, 2)
    assert len(v1.short) == 12 and v1.md5.startswith(v1.short)
    assert list_versions(data_dir) == [v1, v2]
    assert current_version(data_dir) == v2
    assert commit_version(data_dir, remote) == v2, "no change, same version"
    assert list_versions(data_dir) == [v1, v2]
    assert len(remote_files(remote)) == 4, "2 files + 2 directory listings"
    with Repo(str(data_dir)) as repo:
        assert repo.status(cloud=True) == {}, "dvc status -c: remote in sync"


def test_restore_old_version_after_changes_and_without_cache(
    data_dir: Path, remote: Path, tmp_path: Path
) -> None:
    first = write_batch(data_dir, "B001.csv")
    v1 = commit_version(data_dir, remote)
    second = write_batch(data_dir, "B002.csv", rows=5)
    v2 = commit_version(data_dir, remote)
    write_batch(data_dir, "B001.csv", rows=9)  # the working copy moves on
    (data_dir / "accepted" / "B002.csv").unlink()

    paths = restore_version(data_dir, v1.md5, tmp_path / "v1")
    assert [p.name for p in paths] == ["B001.csv"]
    assert paths[0].read_bytes() == first
    assert sorted(p.name for p in (tmp_path / "v1").iterdir()) == ["B001.csv"]

    shutil.rmtree(data_dir / ".dvc" / "cache")
    paths = restore_version(data_dir, v2.short, tmp_path / "v2")  # pulled from the remote
    assert [p.read_bytes() for p in paths] == [first, second]
    with pytest.raises(VersioningError, match="not empty"):
        restore_version(data_dir, v2.md5, tmp_path / "v2")


def test_unknown_version_is_a_clear_error(data_dir: Path, remote: Path, tmp_path: Path) -> None:
    write_batch(data_dir, "B001.csv")
    commit_version(data_dir, remote)
    for ref in ("0" * 32 + ".dir", "not-an-md5"):
        with pytest.raises(VersioningError, match=r"unknown data version .*1 versions known"):
            restore_version(data_dir, ref, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(VersioningError, match="nothing to version"):
        commit_version(tmp_path / "elsewhere", remote)


def test_hidden_temp_files_are_not_versioned(data_dir: Path, remote: Path) -> None:
    write_batch(data_dir, "B001.csv")
    (data_dir / "accepted" / ".tmp-half-written").write_text("time,bio")
    assert commit_version(data_dir, remote).nfiles == 1


def test_library_prints_nothing(
    data_dir: Path, remote: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    write_batch(data_dir, "B001.csv")
    version = commit_version(data_dir, remote)
    restore_version(data_dir, version.md5, tmp_path / "out")
    assert capfd.readouterr() == ("", "")
    handlers = [len(logging.getLogger(n).handlers) for n in ("dvc", "dvc_objects", "dvc_data")]
    assert all(handlers), "DVC's own handlers are put back afterwards"


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_no_git_side_effects_inside_a_git_repo(tmp_path: Path, remote: Path) -> None:
    project = tmp_path / "project"
    (project / "data" / "accepted").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write_batch(project / "data", "B001.csv")
    commit_version(project / "data", remote)
    staged = subprocess.run(
        ["git", "-C", str(project), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.splitlines()
    assert staged and all(line.startswith("??") for line in staged), "nothing staged"


def _commit_own_file(data_dir: Path, remote: Path, name: str) -> DataVersion:
    write_batch(data_dir, name)
    return commit_version(data_dir, remote)


def _files_of(data_dir: Path, version: DataVersion, dest: Path) -> set[str]:
    return {p.name for p in restore_version(data_dir, version.md5, dest)}


def test_concurrent_processes_both_get_their_file(
    data_dir: Path, remote: Path, tmp_path: Path
) -> None:
    ensure_repo(data_dir, remote)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        versions = pool.starmap(
            _commit_own_file, [(data_dir, remote, "P1.csv"), (data_dir, remote, "P2.csv")]
        )
    for i, (name, version) in enumerate(zip(["P1.csv", "P2.csv"], versions, strict=True)):
        assert name in _files_of(data_dir, version, tmp_path / f"out{i}")
    final = current_version(data_dir)
    assert final is not None and final.nfiles == 2
    assert max(v.nfiles for v in versions) == 2


def test_concurrent_threads_both_get_their_file(
    data_dir: Path, remote: Path, tmp_path: Path
) -> None:
    names = [f"T{i}.csv" for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(lambda n: _commit_own_file(data_dir, remote, n), names))
    for i, (name, version) in enumerate(zip(names, versions, strict=True)):
        assert name in _files_of(data_dir, version, tmp_path / f"out{i}")
    assert current_version(data_dir) == max(versions, key=lambda v: v.nfiles)
    assert max(v.nfiles for v in versions) == 4
