"""Loading and writing batches through dataset specs, including a second spec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioprocessml.dataset import BATCH_ID, load_batch, write_batch
from bioprocessml.errors import BatchLoadError
from bioprocessml.ingest.validation import validate_file
from bioprocessml.simulation.faults import FAULTS
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from tests.conftest import TINY

pytestmark = pytest.mark.data


def test_second_spec_round_trip(tmp_path: Path, plant_spec: DatasetSpec, spec: DatasetSpec) -> None:
    paths = write_simulated(tmp_path, plant_spec, 2, "normal", seed=4, cfg=TINY)
    header = paths[0].read_text().splitlines()[0].split(";")
    assert header[:3] == ["Elapsed [min]", "TIC-101 [K]", "AIC-102"] and "Product [mg/L]" in header
    first_row = paths[0].read_text().splitlines()[1].split(";")
    assert 290 < float(first_row[1].replace(",", ".")) < 320, "temperature written in kelvin"
    reference = write_simulated(tmp_path / "ref", spec, 2, "normal", seed=4, cfg=TINY)
    for mine, theirs in zip(paths, reference, strict=True):
        plant = load_batch(mine, plant_spec)
        ours = load_batch(theirs, spec)
        assert plant[BATCH_ID].iloc[0] == mine.stem, "batch id taken from the file name"
        numeric = [v.name for v in spec.variables] + ["time"]
        # 6 significant digits in each unit: kelvin keeps 1e-3 K
        np.testing.assert_allclose(plant[numeric], ours[numeric], rtol=1e-4, atol=1e-3)


def test_datetime_time_column(
    tmp_path: Path, spec: DatasetSpec, normal_batches: list[pd.DataFrame]
) -> None:
    stamped = spec.model_copy(update={"time": spec.time.model_copy(update={"unit": "datetime"})})
    path = write_batch(normal_batches[0], tmp_path / "b.csv", stamped)
    assert "2026-01-01T00:05:00Z" in path.read_text()
    np.testing.assert_allclose(
        load_batch(path, stamped)["time"], normal_batches[0]["time"], atol=1e-6
    )


def test_day_first_timestamps_are_read_with_their_format_and_never_guessed(
    tmp_path: Path, spec: DatasetSpec, normal_batches: list[pd.DataFrame]
) -> None:
    """03/01/2026 is the 3rd of January only if the spec says so: without `time.format`, stamps
    that read both ways are unreadable (the gate says so) rather than silently month-first."""
    day_first = spec.time.model_copy(update={"unit": "datetime", "format": "%d/%m/%Y %H:%M:%S"})
    stamped = spec.model_copy(update={"time": day_first})
    path = write_batch(normal_batches[0], tmp_path / "b.csv", stamped)
    assert "01/01/2026 00:05:00" in path.read_text()
    np.testing.assert_allclose(
        load_batch(path, stamped)["time"], normal_batches[0]["time"], atol=1e-6
    )
    iso_only = spec.model_copy(update={"time": day_first.model_copy(update={"format": None})})
    assert load_batch(path, iso_only)["time"].isna().all()
    report, _ = validate_file(path, iso_only)
    assert "time.format" in report.summary()
    with pytest.raises(ValueError, match="format is for timestamps"):
        type(spec.time)(column="t", unit="h", format="%d.%m.%Y")


@pytest.mark.parametrize(
    ("kind", "words"),
    [("missing-target", "required columns missing: ['titer_gL']"), ("empty-file", "not a readable CSV"),
     ("binary-file", "not utf-8 text"), ("non-utf8-encoding", "not utf-8 text"),
     ("mixed-batch-ids", "must hold one id")],
)  # fmt: skip
def test_unreadable_files_raise_clear_errors(
    tmp_path: Path, spec: DatasetSpec, kind: str, words: str
) -> None:
    index = list(FAULTS).index(kind)
    paths = write_simulated(tmp_path, spec, index + 1, "corrupt", seed=2, cfg=TINY)
    with pytest.raises(BatchLoadError) as info:
        load_batch(paths[index], spec)
    assert str(info.value).startswith(paths[index].name) and words in str(info.value)


def test_corrupt_scenario_covers_every_fault_kind(tmp_path: Path, spec: DatasetSpec) -> None:
    paths = write_simulated(tmp_path, spec, len(FAULTS), "corrupt", seed=2, cfg=TINY)
    assert [p.name.split("-", 1)[1].removesuffix(".csv") for p in paths] == list(FAULTS)
    contents = {p.read_bytes() for p in paths}
    assert len(contents) == len(FAULTS), "every fault yields a different file"
    good = write_simulated(tmp_path / "good", spec, 1, "normal", seed=2, cfg=TINY)[0].read_bytes()
    assert good not in contents


def test_missing_file(tmp_path: Path, spec: DatasetSpec) -> None:
    with pytest.raises(BatchLoadError, match="file not found"):
        load_batch(tmp_path / "none.csv", spec)
