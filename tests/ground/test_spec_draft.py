"""Drafting a spec from batch files: guesses from headers and data, and drafts that load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bioprocessml.dataset import load_batch
from bioprocessml.errors import BioprocessMLError
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.spec_draft import draft_spec
from bioprocessml.spec_draft.draft import plausible_range
from bioprocessml.spec_draft.names import canonical_name, unit_from_header
from tests.conftest import TINY


@pytest.mark.parametrize(
    ("header", "unit", "name"),
    [("dissolved_oxygen_mg_l", "mg/L", "dissolved_oxygen"), ("TIC-101 [K]", "K", "tic_101"),
     ("Stirrer speed (rpm)", "rpm", "stirrer_speed"), ("Temperature degC", "degC", "temperature"),
     ("o2_offgas_pct", "%", "o2_offgas"), ("sugar_feed_l_h", "L/h", "sugar_feed"),
     ("our_g_min", "g/min", "our"), ("aeration_m3_min", "m3/min", "aeration"),
     ("viscosity_cp", "cP", "viscosity"), ("generated_heat_kj", "kJ", "generated_heat"),
     ("vessel_weight_kg", "kg", "vessel_weight"), ("back_pressure_bar", "bar", "back_pressure"),
     ("feed_Lph", "L/h", "feed"), ("biomass_gL", "g/L", "biomass"), ("pH", "pH", "ph"),
     ("Elapsed [min]", "min", "elapsed"), ("SugarFeed_Lmin", "L/min", "sugarfeed"),
     ("Air_m3h", "m3/h", "air"), ("Air_Nm3h", "Nm3/h", "air")],
)  # fmt: skip
def test_unit_and_name_from_header(header: str, unit: str, name: str) -> None:
    found, reason, used = unit_from_header(header)
    assert (found, canonical_name(header, used)) == (unit, name)
    assert reason.startswith("unit from the")


@pytest.mark.parametrize(
    ("values", "unit", "low_at_least"),
    [([0.1, 3.0], "g/L", 0.0), ([57000, 96000], "L", 0.0), ([0.2, 1.1], "%", 0.0),
     ([-1.4, 5.6], "g/min", -1e9), ([280, 300], "K", 0.0), ([1, 2], "degC", -273.15)],
)  # fmt: skip
def test_ranges_are_wide_but_never_below_physics(
    values: list[float], unit: str, low_at_least: float
) -> None:
    bounds, _ = plausible_range(np.array(values), unit)
    assert bounds is not None
    low, high = bounds
    span = values[1] - values[0]
    assert high >= values[1] + 2 * span and low >= low_at_least and low <= values[0]
    if unit == "g/min":  # a mass flow (a balance) may be negative: its range follows the data
        assert low <= values[0] - 2 * span


def test_a_constant_set_point_gets_a_range_around_it() -> None:
    assert plausible_range(np.array([100.0, 100.0]), "rpm")[0] == (50, 150)
    assert plausible_range(np.array([300.15, 300.15]), "K")[0] == (280, 320), "sized as 27 °C"
    assert plausible_range(np.array([0.0, 0.0]), "L/h")[0] is None


def write_draft(tmp_path: Path, files: list[Path], target: str | None = None) -> DatasetSpec:
    path = tmp_path / "drafted.yaml"
    path.write_text(draft_spec(files, target))
    return load_spec(path)


def test_draft_of_simulator_files_reads_them_as_the_shipped_spec_does(
    tmp_path: Path, spec: DatasetSpec
) -> None:
    files = write_simulated(tmp_path / "sim", spec, 3, "normal", seed=5, cfg=TINY)
    drafted = write_draft(tmp_path, files)
    assert drafted.batch_id.column == "batch_id" and drafted.time.column == "time_h"
    assert drafted.target == "titer" and [m.column for m in drafted.metadata] == [
        "recipe", "raw_material_lot",
    ]  # fmt: skip
    assert drafted.names_with(role="feed") == ["feed"]
    assert drafted.names_with(role="offgas") == ["offgas_o2", "offgas_co2"]
    assert sorted(v.column for v in drafted.offline) == ["biomass_gL", "substrate_gL", "titer_gL"]
    ours, theirs = load_batch(files[0], drafted), load_batch(files[0], spec)
    by_column = {v.column: v.name for v in drafted.variables}
    for var in spec.variables:  # same numbers in the same canonical units (air L/min → L/h …)
        np.testing.assert_allclose(ours[by_column[var.column]], theirs[var.name], equal_nan=True)


def test_draft_of_a_plant_export_sniffs_dialect_units_and_batch_id(
    tmp_path: Path, plant_spec: DatasetSpec
) -> None:
    files = write_simulated(tmp_path / "plant", plant_spec, 2, "normal", seed=3, cfg=TINY)
    drafted = write_draft(tmp_path, files, target="Product [mg/L]")
    assert (drafted.csv.delimiter, drafted.csv.decimal) == (";", ",")
    assert drafted.time.unit == "min" and drafted.batch_id.filename_pattern
    units = {v.column: v.unit for v in drafted.variables}
    assert {c: units[c] for c in ("TIC-101 [K]", "Feed [mL/h]", "CDW [kg/m3]", "Air [L/h]")} == {
        "TIC-101 [K]": "K", "Feed [mL/h]": "mL/h", "CDW [kg/m3]": "kg/m3", "Air [L/h]": "L/h",
    }  # fmt: skip
    frame = load_batch(files[1], drafted)
    assert frame["batch_id"].iloc[0] == files[1].stem
    assert 20 < frame["tic_101"].mean() < 45, "kelvin read as kelvin, computed in °C"
    assert frame["time"].max() == pytest.approx(48.0, abs=0.2)


def test_more_files_widen_the_ranges(tmp_path: Path, spec: DatasetSpec) -> None:
    normal = write_simulated(tmp_path / "n", spec, 2, "normal", seed=8, cfg=TINY)
    changed = write_simulated(tmp_path / "c", spec, 2, "feed-change", seed=8, cfg=TINY)
    (tmp_path / "one").mkdir()
    one = write_draft(tmp_path / "one", normal[:1])
    many = write_draft(tmp_path, [*normal, *changed])
    wider = 0
    for var in one.variables:
        a, b = var.range or (0, 0), many.variable(var.name).range or (0, 0)
        assert b[0] <= a[0] and b[1] >= a[1]
        wider += b != a
    assert wider >= 3


def test_every_guess_is_marked_with_a_comment(tmp_path: Path, spec: DatasetSpec) -> None:
    files = write_simulated(tmp_path, spec, 1, "normal", seed=2, cfg=TINY)
    text = draft_spec(files)
    entries = [line for line in text.splitlines() if line.startswith("  - {") and "unit:" in line]
    assert entries and all("# unit" in line and "range:" in line for line in entries)
    assert "# target guessed" in text and "role: a flow named like a feed" in text
    rows = len(files[0].read_text().splitlines()) - 1
    assert yaml.safe_load(text)["rules"]["min_rows"] == rows // 2


@pytest.mark.parametrize(
    ("content", "target", "words"),
    [("time_h,titer_g_l\n1,2\n2,3\n", "titr_g_l", "did you mean 'titer_g_l'?"),
     ("a,b\n2,1\n1,1\n", None, "no time column found"),
     ("time_h,ph\n1,7\n2,7\n", None, "no sparse column"), ("", None, "empty file")],
)  # fmt: skip
def test_draft_errors_say_what_to_do(
    tmp_path: Path, content: str, target: str | None, words: str
) -> None:
    path = tmp_path / "b1.csv"
    path.write_text(content)
    with pytest.raises(BioprocessMLError, match=words):
        draft_spec([path], target)


def test_draft_finds_how_day_first_timestamps_are_written(
    tmp_path: Path, spec: DatasetSpec
) -> None:
    day_first = spec.time.model_copy(update={"unit": "datetime", "format": "%d.%m.%Y %H:%M:%S"})
    stamped = spec.model_copy(update={"time": day_first})
    files = write_simulated(tmp_path / "stamped", stamped, 2, "normal", seed=3, cfg=TINY)
    drafted = write_draft(tmp_path, files)
    assert drafted.time.unit == "datetime" and drafted.time.format == "%d.%m.%Y %H:%M:%S"
    assert load_batch(files[1], drafted)["time"].max() == pytest.approx(48.0, abs=0.2)


def test_draft_reads_ambiguous_us_stamps_by_the_shorter_steps(tmp_path: Path) -> None:
    """1-5 March with no day above 12: day-first would also read every stamp, in order, but a
    batch crossing midnight would jump a month; the draft takes month-first and says so."""
    import pandas as pd

    stamps = pd.date_range("2026-03-01 20:00", "2026-03-05 20:00", freq="2h")
    titer = ["" if i % 6 else f"{i / 10:.1f}" for i in range(len(stamps))]
    files = []
    for k in range(2):
        lines = ["Batch,Time,Temp_C,Titer_gL"]
        lines += [f"B{k},{t:%m/%d/%Y %H:%M},{30 + i % 3},{titer[i]}" for i, t in enumerate(stamps)]
        files.append(tmp_path / f"B{k}.csv")
        files[-1].write_text("\n".join(lines) + "\n")
    drafted = write_draft(tmp_path, files, target="Titer_gL")
    assert drafted.time.format == "%m/%d/%Y %H:%M"
    assert "also read as %d/%m/%Y %H:%M" in draft_spec(files, "Titer_gL")
    assert load_batch(files[0], drafted)["time"].max() == pytest.approx(96.0)
    with pytest.raises(ValueError, match="must hold the date and the time of day"):
        drafted.time.model_validate({"column": "Time", "unit": "datetime", "format": "%d.%m.%Y"})
