"""Filing arrivals: every file ends accepted or quarantined with its reason; nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bioprocessml.ingest.arrival import ingest_file
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.ingest.versioning import current_version, restore_version
from bioprocessml.settings import Settings
from bioprocessml.simulation.faults import FAULTS
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from tests.conftest import TINY


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data").prepare()


def arrive(settings: Settings, source: Path, name: str | None = None) -> str:
    target = settings.incoming_dir / (name or source.name)
    target.write_bytes(source.read_bytes())
    return target.name


HAND_MADE = {
    "json-named-csv.csv": b'{"batch_id": "J1", "rows": [1, 2, 3]}\n',
    "crlf-header-only.csv": b"batch_id,time_h,temperature_C\r\n",
    "latin1-header.csv": "batch_id,time_h,température\nX1,0,30\n".encode("latin-1"),
    "whitespace.csv": b"   \n\n  \n",
}


def test_bad_input_corpus_is_quarantined_and_nothing_lost(
    settings: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    corpus = write_simulated(tmp_path / "corpus", spec, len(FAULTS), "corrupt", seed=9, cfg=TINY)
    for name, data in HAND_MADE.items():
        (tmp_path / "corpus" / name).write_bytes(data)
        corpus.append(tmp_path / "corpus" / name)
    assert len(corpus) >= 15
    for source in corpus:
        result = ingest_file(arrive(settings, source), settings, spec)
        assert result.verdict == "quarantined", (source.name, result)
        assert result.reasons and all(r.strip() for r in result.reasons)
        folder = settings.data_dir / str(result.location)
        assert (folder / source.name).read_bytes() == source.read_bytes()
        reason = json.loads((folder / "reason.json").read_text())
        assert reason["reasons"] == result.reasons and reason["sha256"] == result.sha256
    assert list(settings.incoming_dir.iterdir()) == []
    assert not list(settings.accepted_dir.iterdir())
    entries = Catalogue(settings.data_dir / "catalogue.db").entries()
    assert sorted(e.file for e in entries) == sorted(p.name for p in corpus)


def test_good_batch_is_accepted_normalized_and_versioned(
    settings: Settings, plant_spec: DatasetSpec, tmp_path: Path
) -> None:
    [source] = write_simulated(tmp_path, plant_spec, 1, "normal", seed=3, cfg=TINY)
    result = ingest_file(arrive(settings, source), settings, plant_spec)
    assert result.verdict == "accepted" and result.batch_id == "N001", result.reasons
    normalized = pd.read_csv(settings.accepted_dir / "N001.csv")
    assert normalized["temperature"].between(29, 31).all(), "kelvin → °C"
    assert normalized["titer"].max() < 10, "mg/L → g/L"
    version = current_version(settings.data_dir)
    assert version is not None and version.md5 == result.data_version and version.nfiles == 1
    restored = restore_version(settings.data_dir, version.md5, tmp_path / "restored")
    assert [p.read_bytes() for p in restored] == [(settings.accepted_dir / "N001.csv").read_bytes()]
    assert list(settings.incoming_dir.iterdir()) == []


def test_duplicate_content_is_filed_once_and_id_conflict_quarantined(
    settings: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    [first] = write_simulated(tmp_path / "a", spec, 1, "normal", seed=1, cfg=TINY)
    [other] = write_simulated(tmp_path / "b", spec, 1, "normal", seed=2, cfg=TINY)  # also N001
    filed = ingest_file(arrive(settings, first), settings, spec)
    assert filed.verdict == "accepted"
    accepted = (settings.accepted_dir / "N001.csv").read_bytes()
    repeated = ingest_file(first.name, settings, spec, sha256=filed.sha256)  # same event twice
    assert repeated.verdict == "duplicate" and "repeated event" in repeated.reasons[0]
    assert len(Catalogue(settings.data_dir / "catalogue.db").entries()) == 1
    again = ingest_file(arrive(settings, first, "N001-copy.csv"), settings, spec)
    assert again.verdict == "duplicate" and "already accepted" in again.reasons[0]
    clash = ingest_file(arrive(settings, other, "N001-rerun.csv"), settings, spec)
    assert clash.verdict == "quarantined" and "conflict: batch 'N001'" in clash.reasons[0]
    assert (settings.accepted_dir / "N001.csv").read_bytes() == accepted, "first one kept"
    assert list(settings.incoming_dir.iterdir()) == []


def test_extra_column_is_accepted_with_a_warning(
    settings: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    [source] = write_simulated(tmp_path, spec, 1, "normal", seed=4, cfg=TINY)
    frame = pd.read_csv(source)
    frame["operator_note"] = "ok"
    frame.to_csv(source, index=False)
    result = ingest_file(arrive(settings, source), settings, spec)
    assert result.verdict == "accepted" and any("operator_note" in w for w in result.warnings)


@pytest.mark.parametrize(
    "payload",
    ["../outside.csv", "/etc/passwd", "sub/../../outside.csv", "link.csv", "missing.csv", ""],
)
def test_unsafe_payload_paths_are_refused(
    settings: Settings, spec: DatasetSpec, payload: str
) -> None:
    outside = settings.data_dir.parent / "outside.csv"
    outside.write_text("secret\n")
    os.symlink(outside, settings.incoming_dir / "link.csv")
    result = ingest_file(payload, settings, spec)
    assert result.verdict == "refused" and result.reasons
    assert outside.read_text() == "secret\n" and (settings.incoming_dir / "link.csv").is_symlink()


def test_size_limit_quarantines_without_reading_further(
    settings: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"max_file_mb": 0.01})
    [source] = write_simulated(tmp_path, spec, 1, "normal", seed=5, cfg=TINY)
    result = ingest_file(arrive(small, source), small, spec)
    assert result.verdict == "quarantined" and "over the limit of 10485 bytes" in result.reasons[0]


def test_quarantine_cli_lists_and_shows_reasons(
    settings: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    [source] = write_simulated(tmp_path, spec, 1, "corrupt", seed=6, cfg=TINY)  # missing target
    result = ingest_file(arrive(settings, source), settings, spec)
    qid = str(result.location).split("/")[1]
    env = {**os.environ, "BIOPROCESSML_DATA_DIR": str(settings.data_dir), "COLUMNS": "250"}
    cli = str(Path(sys.executable).parent / "bioprocessml")
    listed = subprocess.run([cli, "quarantine", "list"], env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and qid in listed.stdout and "titer_gL" in listed.stdout
    shown = subprocess.run(
        [cli, "quarantine", "show", qid], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0 and result.reasons[0][:40] in shown.stdout
    assert str(settings.quarantine_dir.resolve() / qid) in shown.stdout.replace("\n", "")
    unknown = subprocess.run(
        [cli, "quarantine", "show", "nope"], env=env, capture_output=True, text=True
    )
    assert unknown.returncode == 1 and "no quarantined file with id 'nope'" in unknown.stderr
