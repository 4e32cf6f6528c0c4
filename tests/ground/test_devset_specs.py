"""The IndPenSim dev set through its shipped spec and through a drafted one: every unit read,
every role where the models and the drift monitor expect it, and the validation gate passing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioprocessml.dataset import load_batch
from bioprocessml.ingest.validation import validate_file
from bioprocessml.settings import PROJECT_ROOT
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.spec_draft import draft_spec
from models.features import FeatureSpec
from tests.devset import dev_files

pytestmark = pytest.mark.data

INDPENSIM = PROJECT_ROOT / "data" / "datasets" / "indpensim.yaml"
FEEDS = ["sugar_feed", "oil_feed", "water_feed", "paa_feed"]
OFFGAS = ["o2_offgas", "co2_offgas", "our", "cer"]
STATES = ["substrate", "biomass", "nh3", "viscosity"]


@pytest.fixture(scope="module")
def indpensim() -> DatasetSpec:
    return load_spec(INDPENSIM)


def test_indpensim_spec_roles_feed_the_models_and_the_drift_monitor(
    indpensim: DatasetSpec,
) -> None:
    features = FeatureSpec.from_spec(indpensim)
    assert list(features.cumulative) == FEEDS and list(features.integrated) == OFFGAS
    assert features.target == "titer" and "titer" not in features.online
    assert not set(STATES) & set(features.online), "states no plant measures are no inputs"
    units = {v.canonical_unit for v in indpensim.variables}
    assert {"g/L", "%", "pH", "degC", "L", "kg", "kJ", "g/h", "L/h", "rpm", "bar", "cP"} == units


def test_indpensim_spec_loads_a_dev_file_in_canonical_units(indpensim: DatasetSpec) -> None:
    path = dev_files("ips-dev-500000")[0]
    frame = load_batch(path, indpensim)
    raw = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    np.testing.assert_allclose(frame["our"], raw["our_g_min"] * 60)  # g/min → g/h
    np.testing.assert_allclose(frame["aeration"], raw["aeration_m3_min"] * 60_000)  # → L/h
    np.testing.assert_allclose(frame["paa"], raw["paa_mg_l"] / 1000)  # mg/L → g/L
    np.testing.assert_allclose(frame["substrate"], raw["substrate_g_l"])  # unmeasured, loaded
    assert frame["titer"].notna().sum() == 21


def gate(paths: list[Path], spec: DatasetSpec) -> list[str]:
    """Each file's failures (an empty list when every file passes)."""
    failures = []
    for path in paths:
        report, frame = validate_file(path, spec)
        if not report.ok or frame is None or report.warnings:
            failures.append(f"{path.name}: {report.summary()} {report.warnings}")
    return failures


def test_indpensim_spec_accepts_normal_and_temperature_shift_batches(
    indpensim: DatasetSpec,
) -> None:
    assert gate(dev_files("ips-dev-500700", "ips-devtemp-510300"), indpensim) == []


def test_a_drafted_spec_runs_the_gate_on_other_dev_files_without_an_edit(tmp_path: Path) -> None:
    source = dev_files("ips-dev-500000")
    path = tmp_path / "drafted.yaml"
    path.write_text(draft_spec(source, target="titer_g_l"))
    drafted = load_spec(path)  # what `spec check` does
    assert drafted.target == "titer" and len(drafted.variables) == 33
    assert load_batch(source[0], drafted)["titer"].notna().sum() == 21
    others = dev_files("ips-dev-500300", "ips-dev-501500", "ips-devtemp-510200")
    assert gate(others, drafted) == []
