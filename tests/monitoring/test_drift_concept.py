"""Concept drift: labelled points, batch error and the CUSUM on error ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.concept import (
    ConceptState,
    ConceptVerdict,
    LiveError,
    assess_concept,
    batch_error,
    concept_reason,
    error_reference,
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


# --- the robust, mostly live reference --------------------------------------------------

RULE = {"burn_in": 4, "k": 0.5, "h": 4.0, "min_log_spread": 0.35}


def live(errors: list[float], drifted: tuple[int, ...] = ()) -> list[LiveError]:
    return [
        LiveError(batch_id=f"B{i}", error=e, data_drift=i in drifted) for i, e in enumerate(errors)
    ]


def test_reference_is_the_median_with_a_robust_floored_spread() -> None:
    ref = error_reference([1.0, 2.0, 4.0], [2.0, float("nan"), -1.0], 0.1, live_only=False)
    assert (
        ref.typical == pytest.approx(2.0) and ref.validation_batches == 3 and ref.live_batches == 1
    )
    assert ref.log_spread == pytest.approx(1.4826 * np.log(2.0) / 2)  # |log dev|: ln2, 0, ln2, 0
    live_only = error_reference([0.5, 0.55, 0.45], [1.0, 1.1, 0.9], 0.01, live_only=True)
    assert live_only.typical == pytest.approx(1.0), "a shift between the groups is no spread"
    assert live_only.log_spread == pytest.approx(1.4826 * np.log(1.1), rel=0.05)
    assert error_reference([1.0, 1.0], [], 0.35, live_only=True).log_spread == 0.35
    with pytest.raises(ValueError, match="no usable"):
        error_reference([], [float("nan")], 0.35, live_only=False)


def test_optimistic_validation_does_not_alarm_on_normal_batches() -> None:
    """Three lucky held-out batches at half the champion's real typical error: the old rule
    (ratio to their mean, k=0.5, h=3) alarms on a normal stream; the live reference does not."""
    rng = np.random.default_rng(5)
    validation = [0.5, 0.45, 0.55]
    errors = list(np.exp(rng.normal(0.0, 0.3, 30)))  # typical 1.0, log-sd 0.3
    state, old = ConceptState(), []
    for e in errors:
        state = update_cusum(state, e / np.mean(validation))
        old.append(state.alarm)
    assert any(old), "the old reference alarms on normal batches"
    verdicts = [assess_concept(validation, live(errors[: i + 1]), **RULE) for i in range(30)]
    assert not any(v.alarm for v in verdicts)
    assert verdicts[-1].reference is not None and 0.7 < verdicts[-1].reference.typical < 1.3


def test_sustained_rise_after_burn_in_alarms_within_three_batches() -> None:
    rng = np.random.default_rng(6)
    errors = [*np.exp(rng.normal(0.0, 0.3, 8)), 3.0, 3.0, 3.0]
    verdicts = [assess_concept([1.0, 1.1, 0.9], live(errors[: i + 1]), **RULE) for i in range(11)]
    assert [v.warming_up for v in verdicts[:5]] == [True] * 4 + [False]
    assert not any(v.alarm for v in verdicts[:8])
    assert any(v.alarm for v in verdicts[8:11])
    reason = concept_reason(verdicts[-1], 4.0)
    assert "CUSUM" in reason and "median of 8 live batches" in reason


def test_burn_in_skips_batches_flagged_as_data_drift() -> None:
    verdict = assess_concept([1.0], live([1.0, 5.0, 1.1, 0.9, 1.0], drifted=(1,)), **RULE)
    assert verdict.live_reference == ["B0", "B2", "B3"] and verdict.reference is not None
    assert verdict.reference.typical == pytest.approx(1.0)
    warming = assess_concept([1.0], live([1.2]), **RULE)
    assert warming.warming_up and not warming.alarm and warming.cusum == 0.0
    assert concept_reason(warming, 4.0).endswith(
        "warming up: 0 live batches in the reference so far"
    )


def test_no_validation_error_starts_from_the_first_live_batch() -> None:
    assert assess_concept([], [], **RULE) == ConceptVerdict()
    first = assess_concept([], live([2.0]), **RULE)
    assert first.warming_up and first.ratio is None
    verdict = assess_concept([], live([2.0, 2.2, 1.8, 2.0, 2.1]), **RULE)
    assert verdict.reference is not None and verdict.reference.typical == pytest.approx(2.0)
    assert not verdict.warming_up and verdict.reference.validation_batches == 0
