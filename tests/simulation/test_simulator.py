"""Physical sanity, determinism and scenario effects of the fed-batch simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioprocessml.dataset import BATCH_ID, TIME, load_batch
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.simulation.simulator import SENSOR_DRIFT_PH_PER_H, simulate
from bioprocessml.spec import DatasetSpec
from tests.conftest import TINY

CONCENTRATIONS = ["biomass", "substrate", "titer"]


def test_cli_scale_batches_load_through_spec(tmp_path: Path, spec: DatasetSpec) -> None:
    paths = write_simulated(tmp_path, spec, 20, "normal", seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"N{i:03d}.csv" for i in range(1, 21)]
    frames = [load_batch(p, spec) for p in paths]
    for frame in frames:
        assert len(frame) == 96 * 12 + 1
        assert frame[TIME].iloc[-1] == pytest.approx(96.0)
        assert frame[[v.name for v in spec.online]].notna().all().all()
        assert 7 <= frame["titer"].notna().sum() <= 9  # ~every 12 h, a few missing
    assert len({f[BATCH_ID].iloc[0] for f in frames}) == 20


def test_physical_sanity(normal_batches: list[pd.DataFrame]) -> None:
    for frame in normal_batches:
        fed = frame["feed_rate"].to_numpy() > 0
        volume = frame["volume"].rolling(24, center=True).mean().dropna().to_numpy()
        assert volume[-1] - volume[0] > 2.0, "3+ L of feed must raise the volume"
        assert np.mean(np.diff(volume[::24]) > 0) > 0.9, "volume grows while fed"
        assert frame.loc[~fed, TIME].max() < frame.loc[fed, TIME].min(), "batch phase, then feed"
        assert (frame[CONCENTRATIONS].dropna(how="all") >= 0).all().all()
        titer = frame[["time", "titer"]].dropna()
        assert titer["titer"].iloc[0] < 0.2 and 2.0 < titer["titer"].iloc[-1] < 8.0
        assert np.corrcoef(titer["time"], titer["titer"])[0, 1] > 0.95, "titer rises over the batch"
        assert frame["dissolved_oxygen"].between(0, 100).all()
        assert (frame["offgas_o2"] < 21.2).all() and (frame["offgas_co2"] > 0).all()
    harvest = [f["titer"].dropna().iloc[-1] for f in normal_batches]
    assert 0.03 < np.std(harvest) / np.mean(harvest) < 0.25, "batch-to-batch variability"


def test_deterministic_for_a_seed() -> None:
    first, again, other = (
        simulate(3, seed=5, cfg=TINY),
        simulate(3, seed=5, cfg=TINY),
        simulate(3, seed=6, cfg=TINY),
    )
    for a, b, c in zip(first, again, other, strict=True):
        pd.testing.assert_frame_equal(a, b)
        assert not np.allclose(a["temperature"], c["temperature"])


def test_files_are_byte_identical_for_a_seed(tmp_path: Path, spec: DatasetSpec) -> None:
    a = write_simulated(tmp_path / "a", spec, 2, "raw-material", seed=3, cfg=TINY)
    b = write_simulated(tmp_path / "b", spec, 2, "raw-material", seed=3, cfg=TINY)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


@pytest.fixture(scope="module")
def paired() -> dict[str, list[pd.DataFrame]]:
    """Each scenario with the same seed: batch k differs from normal batch k only by the scenario."""
    names = ["normal", "feed-change", "raw-material", "sensor-drift", "stuck-sensor"]
    return {name: simulate(8, name, seed=11) for name in names}


def harvest(frames: list[pd.DataFrame], column: str = "titer") -> np.ndarray:
    return np.array([f[column].dropna().iloc[-1] for f in frames])


def test_feed_change_changes_recipe_and_feed(paired: dict[str, list[pd.DataFrame]]) -> None:
    for normal, changed in zip(paired["normal"], paired["feed-change"], strict=True):
        assert set(normal["recipe"]) == {"R1"} and set(changed["recipe"]) == {"R2"}
        assert changed["feed_rate"].sum() > 1.3 * normal["feed_rate"].sum()
        assert changed.loc[changed[TIME] < 7.5, "feed_rate"].eq(0).all()
        late = changed[TIME] > 30
        assert changed.loc[late, "temperature"].mean() == pytest.approx(27.0, abs=0.1)
    assert (harvest(paired["feed-change"]) > harvest(paired["normal"])).all()


def test_raw_material_shifts_yield_not_recipe(paired: dict[str, list[pd.DataFrame]]) -> None:
    for normal, lot in zip(paired["normal"], paired["raw-material"], strict=True):
        np.testing.assert_allclose(lot["feed_rate"], normal["feed_rate"])
        assert set(lot["raw_material_lot"]).isdisjoint(set(normal["raw_material_lot"]))
    assert (
        harvest(paired["raw-material"], "biomass") < 0.93 * harvest(paired["normal"], "biomass")
    ).all()
    assert (harvest(paired["raw-material"]) < 0.8 * harvest(paired["normal"])).all()


def test_sensor_drift_moves_only_the_ph_reading(paired: dict[str, list[pd.DataFrame]]) -> None:
    for normal, drifting in zip(paired["normal"], paired["sensor-drift"], strict=True):
        pd.testing.assert_frame_equal(
            normal.drop(columns=["ph", BATCH_ID]), drifting.drop(columns=["ph", BATCH_ID])
        )
        offset = drifting["ph"] - normal["ph"]
        assert offset.iloc[: len(offset) // 3].abs().max() == 0, "no drift early on"
        assert (
            offset.iloc[-1] > 0.3 and offset.diff().dropna().between(0, SENSOR_DRIFT_PH_PER_H).all()
        )


def test_stuck_sensor_freezes_dissolved_oxygen(paired: dict[str, list[pd.DataFrame]]) -> None:
    for normal, stuck in zip(paired["normal"], paired["stuck-sensor"], strict=True):
        do = stuck["dissolved_oxygen"].to_numpy()
        run = len(do) - np.flatnonzero(np.diff(do) != 0)[-1] - 1
        assert run > 0.35 * len(do), "the reading stays frozen for the rest of the batch"
        assert np.diff(normal["dissolved_oxygen"].to_numpy()[-run:]).std() > 0.1
        pd.testing.assert_frame_equal(
            normal.drop(columns=["dissolved_oxygen", BATCH_ID]),
            stuck.drop(columns=["dissolved_oxygen", BATCH_ID]),
        )


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'bad'; choose from normal"):
        simulate(1, "bad")
