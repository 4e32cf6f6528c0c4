"""Concept drift: labelled points, batch error and the CUSUM on error ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.concept import (
    ConceptState,
    batch_error,
    labelled_points,
    update_cusum,
    validation_error,
)


def batch() -> pd.DataFrame:
    time = np.arange(0.0, 24.01, 1.0)
    titer = np.full(len(time), np.nan)
    titer[[0, 12, 24]] = [0.0, 1.2, 2.4]
    return pd.DataFrame({"batch_id": "B1", "time": time, "x": time / 10, "titer": titer})


def from_history(offset: float = 0.0):  # type: ignore[no-untyped-def]
    return lambda histories: np.array([h["x"].iloc[-1] + offset for h in histories])


def test_labelled_points_cut_histories_at_each_assay() -> None:
    points = labelled_points(batch(), "titer")
    assert [y for _, y in points] == [1.2, 2.4], "the assay at t=0 is left out"
    assert [h["time"].iloc[-1] for h, _ in points] == [12.0, 24.0]
    assert labelled_points(batch().drop(columns=["titer"]), "titer") == []


def test_batch_error_is_rmse_on_the_assays() -> None:
    assert batch_error(from_history(), batch(), "titer") == pytest.approx(0.0)
    assert batch_error(from_history(0.3), batch(), "titer") == pytest.approx(0.3)
    no_labels = batch().assign(titer=np.nan)
    assert batch_error(from_history(), no_labels, "titer") is None


def test_validation_error_is_the_typical_batch_rmse() -> None:
    actual = np.zeros(4)
    predicted = np.array([1.0, 1.0, 3.0, 3.0])
    assert validation_error(predicted, actual, np.array(["a", "a", "b", "b"])) == pytest.approx(2.0)


def test_one_noisy_batch_does_not_alarm() -> None:
    state = ConceptState()
    for ratio in [1.0, 4.0, 0.8, 1.1, 0.9, 1.2]:
        state = update_cusum(state, ratio)
        assert not state.alarm
    assert state.batches == 6 and state.cusum < 1.0


def test_sustained_rise_alarms() -> None:
    state, alarmed_at = ConceptState(), None
    for k, ratio in enumerate([1.0, 0.9, 3.0, 3.0, 3.0, 3.0], start=1):
        state = update_cusum(state, ratio)
        if state.alarm and alarmed_at is None:
            alarmed_at = k
    assert alarmed_at == 5 and state.cusum == pytest.approx(6.0)


def test_slack_and_level_are_parameters() -> None:
    assert update_cusum(ConceptState(), 2.0, k=0.0, h=0.5).alarm
    assert not update_cusum(ConceptState(), 2.0).alarm


def test_non_finite_ratio_leaves_state_alone() -> None:
    state = ConceptState(cusum=1.0, batches=3)
    assert update_cusum(state, float("nan")) == state
    assert update_cusum(state, float("inf")) == state
