"""Single-batch limits and what counts as drift: levels, resolution, recipe channels, confirmation
and false alarms over many heavy-tailed features (no Evidently)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bioprocessml.settings import DEFAULT_SPEC
from bioprocessml.spec import load_spec
from monitoring.data_drift import ColumnDrift, column_drifts, column_reason
from monitoring.drift_limits import (
    PRIORITY_SHARE,
    channel_scales,
    exceedance,
    feature_levels,
    feature_resolution,
    judge_features,
    prediction_limits,
    spec_ranges,
)

NO_FLOOR = pd.Series(dtype=float)


def test_levels_add_up_to_p_value() -> None:
    features = pd.Index(["a__x", "a__y", "b__x", "c__cumulative"])
    levels = feature_levels(features, ["c__cumulative"], 0.01)
    assert levels.sum() == pytest.approx(0.01)
    assert levels["c__cumulative"] == pytest.approx(0.01 * PRIORITY_SHARE)
    assert feature_levels(features, [], 0.01).sum() == pytest.approx(0.01)
    assert feature_levels(features, list(features), 0.01).sum() == pytest.approx(0.01)


def test_limits_are_student_prediction_intervals() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"a__x": rng.normal(5, 2, 12), "a__sparse": [1.0] + [np.nan] * 11})
    limits = prediction_limits(reference, NO_FLOOR, 0.01, [])
    assert "a__sparse" not in limits.index, "one reference value gives no limits"
    mean, sd, n = reference["a__x"].mean(), reference["a__x"].std(ddof=1), 12
    half = stats.t.ppf(1 - 0.01 / 2, n - 1) * sd * np.sqrt(1 + 1 / n)  # one tested feature
    assert limits.loc["a__x", "lower"] == pytest.approx(mean - half)
    assert limits.loc["a__x", "upper"] == pytest.approx(mean + half)


def constant_reference(jitter: float) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Ten batches of a recipe channel `paa` at 1.2 g/L (phases equal up to `jitter`) and a
    noisy sensor `ph`; the raw frames give the channels' scales."""
    rng = np.random.default_rng(4)
    frames = [
        pd.DataFrame({"paa": np.r_[np.full(50, 1.2), np.full(50, 0.8)] + jitter * rng.standard_normal(),
                      "ph": rng.normal(6.5, 0.05, 100)})
        for _ in range(10)
    ]  # fmt: skip
    table = pd.DataFrame(
        {"paa__early_mean": [f["paa"][:50].mean() for f in frames],
         "paa__late_mean": [f["paa"][50:].mean() for f in frames],
         "ph__late_mean": [f["ph"].mean() for f in frames]}
    )  # fmt: skip
    return table, frames


@pytest.mark.parametrize("jitter", [0.0, 1e-13])
def test_constant_channel_gets_a_tolerance_not_1e_9(jitter: float) -> None:
    """A set-point constant over the reference: a 1e-9 difference is no change, a change
    beyond the tolerance (2 % of the channel's scale) is a recipe change."""
    table, frames = constant_reference(jitter)
    scales = channel_scales(frames, ["paa", "ph"])
    assert scales["paa"] == pytest.approx(0.4), "1st-99th percentile spread of its readings"
    limits = prediction_limits(table, feature_resolution(table, scales, 100.0, 0.02), 0.01, [])
    assert limits.loc["paa__early_mean", "half"] == pytest.approx(0.02 * 0.4)
    assert limits.loc["paa__early_mean", "recipe"] and not limits.loc["ph__late_mean", "recipe"]
    tiny = table.iloc[0].add(pd.Series({"paa__early_mean": 1e-9}), fill_value=0)
    assert (exceedance(tiny, limits).abs() < 1).all()
    moved = table.iloc[0].add(pd.Series({"paa__early_mean": 0.05}), fill_value=0)
    recipe, confirmed = judge_features(exceedance(moved, limits), [], limits["recipe"], confirm=2)
    assert recipe["paa__early_mean"] and not confirmed.any(), "a recipe change alarms at once"


def test_flat_channel_takes_its_scale_from_the_spec_range() -> None:
    frames = [pd.DataFrame({"rpm": np.full(20, 100.0), "off": np.zeros(20)}) for _ in range(3)]
    scales = channel_scales(frames, ["rpm", "off", "gone"], ranges={"rpm": (50.0, 250.0)})
    assert scales.to_dict() == {"rpm": 200.0, "off": 1.0, "gone": 1.0}
    assert channel_scales(frames, ["rpm"])["rpm"] == 100.0, "no range: |median|"
    ranges = spec_ranges(load_spec(DEFAULT_SPEC))
    assert ranges["temperature"] == (20.0, 45.0) and ranges["titer"] == (0.0, 30.0)


def test_resolution_in_each_features_units() -> None:
    table = pd.DataFrame({"f__mid_slope": [0.1, 0.2], "f__cumulative": [5.0, 6.0],
                          "f__late_noise": [0.3, 0.5], "g__late_noise": [0.0, 0.0], "f__final": [1.0, 2.0],
                          "f__late_flat": [0.0, 0.0]})  # fmt: skip
    resolution = feature_resolution(table, pd.Series({"f": 10.0, "g": 4.0}), 30.0, 0.02)
    assert resolution["f__final"] == pytest.approx(0.2)
    assert resolution["f__mid_slope"] == pytest.approx(0.2 / 10.0), "per hour of a phase"
    assert resolution["f__cumulative"] == pytest.approx(0.2 * 30.0), "over the batch"
    assert resolution["f__late_noise"] == pytest.approx(0.02 * 0.4), "share of typical noise"
    assert resolution["g__late_noise"] == pytest.approx(0.02 * 4.0), "noise-free channel"
    assert resolution["f__late_flat"] == pytest.approx(0.02), "a share: the tolerance itself"


def gaussian_limits(rng: np.random.Generator, features: int = 4) -> pd.DataFrame:
    columns = [f"c{i}__x" for i in range(features)]
    reference = pd.DataFrame(rng.normal(0, 1, (20, features)), columns=columns)
    return prediction_limits(reference, NO_FLOOR, 0.01, [])


def test_an_excursion_alarms_only_when_the_next_batch_confirms_it() -> None:
    limits = gaussian_limits(np.random.default_rng(2))
    up = pd.Series({"c0__x": 9.0, "c1__x": 0.1, "c2__x": -9.0, "c3__x": 9.0})
    before = pd.Series({"c0__x": 8.0, "c1__x": 0.0, "c2__x": 8.0, "c3__x": 0.0})
    ratio, earlier = exceedance(up, limits), exceedance(before, limits)
    recipe, confirmed = judge_features(ratio, [earlier], limits["recipe"], confirm=2)
    assert list(confirmed[confirmed].index) == ["c0__x"], "same feature, same side, twice"
    assert not recipe.any()
    assert not judge_features(ratio, [], limits["recipe"], confirm=2)[1].any(), "none before"
    assert judge_features(ratio, [], limits["recipe"], confirm=1)[1].sum() == 3


def test_column_kinds_and_reasons() -> None:
    limits = gaussian_limits(np.random.default_rng(2))
    new = pd.Series({"c0__x": 9.0, "c1__x": 0.1, "c2__x": -9.0, "c3__x": np.nan})
    ratio = exceedance(new, limits)
    confirmed = pd.Series(False, index=ratio.index)
    confirmed["c0__x"] = True
    drifts = {
        d.column: d
        for d in column_drifts(ratio, ~confirmed & False, confirmed, ["c0", "c1", "c2", "c3"])
    }
    assert drifts["c0"].drifted and drifts["c0"].kind == "confirmed" and drifts["c0"].score > 1
    assert not drifts["c2"].drifted and drifts["c2"].kind == "excursion"
    assert drifts["c1"].kind is None and drifts["c3"].score == 0.0
    reason = column_reason(drifts["c0"], new, limits, 0.01, 2)
    assert reason.startswith("c0: ") and "in this batch and the 1 before it" in reason
    assert "excursion" in column_reason(drifts["c2"], new, limits, 0.01, 2)


def heavy_tailed_stream(rng: np.random.Generator, n: int, features: int) -> pd.DataFrame:
    """Summary features of normal batches with heavy tails (Student t, 2 df): a disturbance
    now and then moves a feature far out in one batch."""
    return pd.DataFrame(
        rng.standard_t(2, (n, features)), columns=[f"c{i}__x" for i in range(features)]
    )


def test_false_alarms_controlled_over_many_heavy_tailed_features() -> None:
    """200 heavy-tailed features, 300 normal batches: single-batch exceedances are common
    (what a one-batch rule alarms on), confirmed alarms are rare."""
    rng = np.random.default_rng(3)
    limits = prediction_limits(heavy_tailed_stream(rng, 12, 200), NO_FLOOR, 0.01, [])
    stream = heavy_tailed_stream(rng, 300, 200)
    ratios = [exceedance(row, limits) for _, row in stream.iterrows()]
    beyond = np.mean([(r.abs() > 1).any() for r in ratios])
    alarms = np.mean(
        [judge_features(r, [p], limits["recipe"], 2)[1].any() for p, r in pairwise(ratios)]
    )
    assert beyond > 0.1, "heavy tails: one batch in ten or more has an excursion"
    assert alarms <= 0.02


def test_column_drift_model_round_trips_json() -> None:
    drift = ColumnDrift(
        column="ph", drifted=True, score=3.2, features=["ph__late_mean"], kind="confirmed"
    )
    assert ColumnDrift.model_validate_json(drift.model_dump_json()) == drift
