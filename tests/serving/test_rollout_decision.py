"""Rollout decisions from paired per-batch errors: better, equal, worse, failing, too few."""

from __future__ import annotations

import numpy as np
import pytest

from bioprocessml.serving.rollout_decision import decide, paired_test
from bioprocessml.settings import Rollout

pytestmark = pytest.mark.unit

RULES = Rollout()


def errors(n: int, factor: float, seed: int = 0) -> tuple[list[float], list[float]]:
    """Champion errors per batch and a challenger's: `factor` times them, plus noise."""
    rng = np.random.default_rng(seed)
    champion = rng.uniform(0.2, 0.4, n)
    challenger = champion * factor + rng.normal(0, 0.01, n)
    return champion.tolist(), challenger.tolist()


def test_fewer_batches_than_needed_keep_the_shadow() -> None:
    champion, challenger = errors(4, 0.5)
    decision = decide("shadow", champion, challenger, 0, 100, 0, RULES)
    assert decision.stage == "shadow" and "waiting for 5 batches" in decision.reason


def test_a_better_challenger_goes_to_canary_then_is_promoted() -> None:
    champion, challenger = errors(5, 0.7)
    assert decide("shadow", champion, challenger, 0, 100, 0, RULES).stage == "canary"
    champion, challenger = errors(6, 0.7)
    promoted = decide("canary", champion, challenger, 1, 100, 0, RULES, canary_answers=4)
    assert promoted.stage == "promoted"
    assert promoted.test is not None and promoted.test.p_better < 0.05
    assert promoted.reason.startswith("better: 6 batches, challenger error -30")


@pytest.mark.parametrize(("batches", "answers"), [(0, 0), (1, 0), (1, 3), (0, 8)])
def test_promotion_needs_canary_answers_that_users_received(batches: int, answers: int) -> None:
    """Scored in canary is not enough: users must have got the challenger's answers (a canary
    batch, `min_canary_answers` answers); shadow predictions nobody saw do not count."""
    champion, challenger = errors(6, 0.7)
    held = decide("canary", champion, challenger, batches, 100, 0, RULES, canary_answers=answers)
    assert held.stage == "canary" and "users got only" in held.reason


def test_an_equal_challenger_reaches_canary_but_is_never_promoted() -> None:
    champion, challenger = errors(5, 1.0, seed=3)
    assert decide("shadow", champion, challenger, 0, 100, 0, RULES).stage == "canary"
    champion, challenger = errors(10, 1.0, seed=3)
    assert decide("canary", champion, challenger, 5, 100, 0, RULES).stage == "canary"
    champion, challenger = errors(RULES.max_batches, 1.0, seed=3)
    ended = decide("canary", champion, challenger, 10, 100, 0, RULES)
    assert ended.stage == "rolled_back" and ended.reason.startswith("not better after 15")


@pytest.mark.parametrize("stage", ["shadow", "canary"])
def test_a_worse_challenger_is_rolled_back(stage: str) -> None:
    champion, challenger = errors(5, 1.4)
    decision = decide(stage, champion, challenger, 2, 100, 0, RULES)  # type: ignore[arg-type]
    assert decision.stage == "rolled_back" and decision.reason.startswith("worse:")


def test_failing_predictions_roll_back_before_any_batch_is_scored() -> None:
    decision = decide("shadow", [], [], 0, 40, 3, RULES)
    assert decision.stage == "rolled_back" and "failed 3 of 40" in decision.reason
    assert decide("shadow", [], [], 0, 10, 3, RULES).stage == "shadow"  # too few to judge


def test_identical_errors_are_no_evidence_either_way() -> None:
    test = paired_test([0.3] * 6, [0.3] * 6)
    assert (test.p_better, test.p_worse, test.n) == (1.0, 1.0, 6)


def test_an_ended_rollout_cannot_be_decided_again() -> None:
    with pytest.raises(ValueError, match="already ended"):
        decide("promoted", [], [], 0, 0, 0, RULES)


def test_a_clearly_worse_challenger_stays_in_shadow_until_the_test_can_reject_it() -> None:
    rules = Rollout(min_batches=3)
    champion, challenger = errors(3, 3.0)
    held = decide("shadow", champion, challenger, 0, 100, 0, rules)
    assert held.stage == "shadow" and held.reason.startswith("too uncertain for canary")
    champion, challenger = errors(5, 3.0)
    assert decide("shadow", champion, challenger, 0, 100, 0, rules).stage == "rolled_back"
