"""Per-batch summary features on small synthetic frames (no simulator, no Evidently)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.features import FeatureSpec
from monitoring.summary import (
    batch_summary,
    describe_feature,
    feature_column,
    outcome_features,
    summary_names,
    summary_table,
)

FS = FeatureSpec(
    online=("temp", "ph", "feed_rate", "offgas_o2"),
    cumulative=("feed_rate",),
    integrated=("offgas_o2",),
    offline=("titer",),
    target="titer",
)


def frame(batch: str = "B1", hours: float = 30.0, step_h: float = 0.25) -> pd.DataFrame:
    time = np.arange(0.0, hours + 1e-9, step_h)
    rng = np.random.default_rng(0)
    titer = np.full(len(time), np.nan)
    titer[[0, len(time) // 2, len(time) - 1]] = [0.0, 1.0, 2.0]
    return pd.DataFrame(
        {
            "batch_id": batch,
            "time": time,
            "temp": 30.0 + 0.1 * rng.standard_normal(len(time)),
            "ph": 6.8 + 0.01 * time,
            "feed_rate": np.where(time >= 10, 0.05, 0.0),
            "offgas_o2": 20.9 - 0.02 * time,
            "titer": titer,
        }
    )


def test_keys_map_back_to_columns() -> None:
    assert feature_column("ph__late_mean") == "ph"
    assert feature_column("offgas_o2__integrated") == "offgas_o2"
    assert feature_column("dissolved_oxygen__late_noise") == "dissolved_oxygen"
    with pytest.raises(ValueError):
        feature_column("ph")
    sources = {*FS.online, *FS.cumulative, *FS.integrated, *FS.offline}
    assert {feature_column(k) for k in summary_names(FS)} == sources
    assert len(set(summary_names(FS))) == len(summary_names(FS))
    assert set(outcome_features(FS)) == {
        "feed_rate__cumulative", "offgas_o2__integrated", "titer__harvest",
    }  # fmt: skip


def test_words_for_features() -> None:
    assert describe_feature("ph__late_mean") == "late-phase mean"
    assert describe_feature("ph__early_slope") == "early-phase slope [/h]"
    assert describe_feature("titer__harvest") == "harvest assay"
    assert describe_feature("ph__final") == "final value"
    assert (
        describe_feature("ph__late_flat")
        == "late-phase share of readings unchanged from the one before"
    )


def test_phase_statistics_of_known_signals() -> None:
    summary = batch_summary(frame(), FS)
    assert set(summary) == set(summary_names(FS))
    for phase in ("early", "mid", "late"):
        assert summary[f"ph__{phase}_slope"] == pytest.approx(0.01)
        assert summary[f"offgas_o2__{phase}_slope"] == pytest.approx(-0.02)
        assert abs(summary[f"temp__{phase}_slope"]) < 0.05
    assert summary["ph__early_mean"] == pytest.approx(6.8 + 0.01 * 4.875)  # t in [0, 10)
    assert summary["ph__final"] == pytest.approx(6.8 + 0.01 * 29.75, abs=1e-3)
    assert summary["feed_rate__cumulative"] == pytest.approx(0.05 * 20, rel=0.02)
    start = 1.375  # deviation from the mean of the first 12 readings (models.features)
    assert summary["offgas_o2__integrated"] == pytest.approx(0.02 * (30**2 / 2 - start * 30))
    assert summary["titer__harvest"] == 2.0


def test_stuck_reading_has_no_noise() -> None:
    noisy = batch_summary(frame(), FS)
    stuck = frame()
    stuck.loc[stuck["time"] > 12, "temp"] = stuck["temp"].iloc[48]
    assert noisy["temp__late_noise"] > 0.05 and noisy["temp__late_flat"] == 0.0
    assert batch_summary(stuck, FS)["temp__late_noise"] == 0.0
    assert batch_summary(stuck, FS)["temp__late_flat"] == 1.0
    assert noisy["feed_rate__late_flat"] == 1.0, "a constant feed is flat by design"


def test_missing_values_give_nan_not_errors() -> None:
    gaps = frame()
    gaps["ph"] = np.nan
    gaps.loc[gaps.index[::2], "temp"] = np.nan
    gaps = gaps.drop(columns=["offgas_o2"])
    gaps.loc[gaps.index[-1], "titer"] = np.nan  # harvest sample missing
    summary = batch_summary(gaps, FS)
    assert all(np.isnan(v) for k, v in summary.items() if k.startswith(("ph__", "offgas_o2__")))
    assert np.isnan(summary["titer__harvest"]), "an earlier assay is not a harvest assay"
    assert np.isfinite(summary["temp__late_mean"]) and np.isfinite(summary["temp__late_noise"])
    one_row = batch_summary(frame().head(1), FS)
    assert all(np.isnan(v) for v in one_row.values())


def test_summary_table_is_indexed_by_batch() -> None:
    table = summary_table([frame("B1"), frame("B2", hours=24)], FS)
    assert list(table.index) == ["B1", "B2"] and list(table.columns) == summary_names(FS)
    assert table.dtypes.eq(float).all()
