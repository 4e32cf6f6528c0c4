"""A full data folder (a small tmpfs): the file stays in incoming/, the reason is logged,
nothing half-written is accepted; once space is back, reconcile files it."""

from __future__ import annotations

import errno
import hashlib
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.ingest.reconcile import settle_arrivals
from bioprocessml.ingest.versioning import current_version
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from tests.faults.conftest import valid_files


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system to the last byte."""
    ballast = folder / "ballast.bin"
    with ballast.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return ballast


def test_full_data_folder_keeps_the_file_and_files_it_later(
    small_disk: Path, tmp_path: Path, spec: DatasetSpec, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(state_dir=tmp_path / "state", data_dir=small_disk / "data").prepare()
    [source] = valid_files(tmp_path / "src", spec, 1, 7901)
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    (settings.incoming_dir / source.name).write_bytes(source.read_bytes())
    data = source.read_bytes()
    arrival, _ = catalogue.record_arrival(source.name, hashlib.sha256(data).hexdigest(), len(data))
    ballast = fill(small_disk)
    with caplog.at_level(logging.ERROR):
        results = settle_arrivals(settings, spec, in_flight=set(), grace=0)
    assert results == []
    assert (settings.incoming_dir / source.name).read_bytes() == source.read_bytes(), "kept"
    assert "stays in incoming/" in caplog.text
    assert "No space left" in caplog.text or "disk is full" in caplog.text
    assert not [p for p in settings.accepted_dir.iterdir() if not p.name.startswith(".")]
    assert current_version(settings.data_dir) is None, "no version with a half-written file"
    assert not catalogue.entries()
    ballast.unlink()
    [result] = settle_arrivals(settings, spec, in_flight=set(), grace=0)
    assert result.verdict == "accepted", result.reasons
    assert not (settings.incoming_dir / source.name).exists()
    assert catalogue.arrival(arrival.id).settled_at is not None  # type: ignore[union-attr]
