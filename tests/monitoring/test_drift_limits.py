"""Single-batch prediction limits: levels, limits, false-alarm rate (no Evidently)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitoring.data_drift import (
    PRIORITY_SHARE,
    ColumnDrift,
    feature_levels,
    prediction_limits,
    single_batch_reason,
    single_batch_test,
)


def test_levels_add_up_to_p_value() -> None:
    features = pd.Index(["a__x", "a__y", "b__x", "c__cumulative"])
    levels = feature_levels(features, ["c__cumulative"], 0.01)
    assert levels.sum() == pytest.approx(0.01)
    assert levels["c__cumulative"] == pytest.approx(0.01 * PRIORITY_SHARE)
    assert feature_levels(features, [], 0.01).sum() == pytest.approx(0.01)
    assert feature_levels(features, list(features), 0.01).sum() == pytest.approx(0.01)


def test_limits_are_student_prediction_intervals() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {"a__x": rng.normal(5, 2, 12), "a__const": 3.0, "a__sparse": [1.0] + [np.nan] * 11}
    )
    limits = prediction_limits(reference, 0.01, [])
    assert "a__sparse" not in limits.index, "one reference value gives no limits"
    mean, sd, n = reference["a__x"].mean(), reference["a__x"].std(ddof=1), 12
    half = stats.t.ppf(1 - 0.01 / 2 / 2, n - 1) * sd * np.sqrt(1 + 1 / n)  # 2 tested features
    assert limits.loc["a__x", "lower"] == pytest.approx(mean - half)
    assert limits.loc["a__x", "upper"] == pytest.approx(mean + half)
    assert np.isfinite(limits.loc["a__const", ["lower", "upper"]]).all()


def test_column_drifts_when_a_feature_is_beyond_its_limits() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame(rng.normal(0, 1, (20, 4)), columns=["a__x", "a__y", "b__x", "b__y"])
    limits = prediction_limits(reference, 0.01, [])
    new = pd.Series({"a__x": 0.1, "a__y": 9.0, "b__x": np.nan, "b__y": -0.2})
    drifts = {d.column: d for d in single_batch_test(new, limits, ["a", "b", "c"])}
    assert drifts["a"].drifted and drifts["a"].features == ["a__y"] and drifts["a"].score > 1
    assert not drifts["b"].drifted and drifts["b"].score < 1
    assert not drifts["c"].drifted and drifts["c"].score == 0.0
    reason = single_batch_reason(drifts["a"], new, limits, 0.01)
    assert reason.startswith("a: ") and "9 outside the reference prediction limits" in reason
    assert "p<0.01 overall" in reason


def test_false_alarm_rate_stays_below_p_value() -> None:
    """Gaussian features: a normal batch is flagged (any feature beyond) at most ~p_value."""
    rng = np.random.default_rng(3)
    columns = [f"c{i}__x" for i in range(40)]
    flagged = 0
    for _ in range(300):
        reference = pd.DataFrame(rng.normal(0, 1, (20, 40)), columns=columns)
        limits = prediction_limits(reference, 0.05, columns[:3])
        new = pd.Series(rng.normal(0, 1, 40), index=columns)
        flagged += bool(((new - limits["mean"]).abs() > limits["t"] * limits["scale"]).any())
    assert 0.01 < flagged / 300 < 0.09  # independent features: 1 - Π(1 - level) ≈ 0.049


def test_column_drift_model_round_trips_json() -> None:
    drift = ColumnDrift(column="ph", drifted=True, score=3.2, features=["ph__late_mean"])
    assert ColumnDrift.model_validate_json(drift.model_dump_json()) == drift
