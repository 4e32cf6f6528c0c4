from __future__ import annotations

import pytest

from models.gate import calibrated, offline_gate, pick_best, wilson_interval
from models.retraining import LoggedCandidate, judge_champion

pytestmark = pytest.mark.unit

BOUNDS = (0.85, 0.99)


def m(rmse: float, coverage: float = 0.95, n: float = 100, naive: float = 2.0) -> dict[str, float]:
    return {"rmse": rmse, "coverage": coverage, "n": n, "naive_rmse": naive}


def test_no_champion_makes_a_useful_candidate_champion() -> None:
    result = offline_gate("gp", m(1.0), None, 0.05, BOUNDS)
    assert result.decision == "champion" and "beats the naive forecast" in result.reason


@pytest.mark.parametrize("champion", [None, m(1.5)])
def test_no_model_worse_than_the_naive_forecast_serves(champion: dict[str, float] | None) -> None:
    """Bootstrap included: a first model that does not beat what past batches say is no champion."""
    result = offline_gate("pls", m(1.0, naive=1.02), champion, 0.05, BOUNDS, naive_margin=0.05)
    assert result.decision == "rejected"
    assert "does not beat the naive forecast's 1.0200" in result.reason
    assert offline_gate("pls", m(0.9, naive=1.0), champion, 0.05, BOUNDS).decision != "rejected"


@pytest.mark.parametrize(
    ("candidate", "decision", "words"),
    [(m(0.90), "challenger", "beats"), (m(0.96), "rejected", "does not beat"),
     (m(1.10), "rejected", "does not beat"), (m(0.5, coverage=0.70), "rejected", "coverage 0.70 of 100")],
)  # fmt: skip
def test_gate_against_champion(candidate: dict[str, float], decision: str, words: str) -> None:
    result = offline_gate("gp", candidate, m(1.0), 0.05, BOUNDS)
    assert result.decision == decision and words in result.reason


def test_coverage_evidence_counts_batches_not_points() -> None:
    """74 % of 57 points in 3 held-out batches: about 2 of 3 batches covered, no evidence of
    too-narrow intervals; the same share over 60 batches is."""
    assert calibrated({**m(1, coverage=0.74, n=57), "batches": 3}, BOUNDS)
    assert not calibrated(m(1, coverage=0.74, n=57), BOUNDS)
    assert not calibrated({**m(1, coverage=0.74, n=1140), "batches": 60}, BOUNDS)


def test_coverage_judged_with_its_sample_size() -> None:
    assert calibrated(m(1, coverage=1.0, n=11), BOUNDS)
    assert not calibrated(m(1, coverage=0.70, n=100), BOUNDS)
    assert not calibrated(m(1, coverage=1.0, n=2000), BOUNDS)
    low, high = wilson_interval(95, 100)
    assert low == pytest.approx(0.888, abs=0.002) and high == pytest.approx(0.978, abs=0.002)


def test_pick_best_prefers_calibrated_candidates() -> None:
    results = {"pls": m(1.0), "gp": m(0.8, coverage=0.6), "lstm": m(0.9)}
    assert pick_best(results, BOUNDS) == "lstm"
    assert pick_best({"gp": m(0.8, coverage=0.6), "pls": m(1.0, coverage=0.5)}, BOUNDS) == "gp"


def test_spread_holdout_keeps_the_newest_regime_in_both_sets() -> None:
    from models.evaluate import split_batches

    ids = [f"N{i:03d}" for i in range(1, 21)] + ["RM021", "RM022"]
    train, held = split_batches(ids, 0.33, "spread")
    assert len(held) == 7 and len(train) == 15 and not set(train) & set(held)
    assert "RM022" in held and "RM021" in train
    assert split_batches(ids, 0.33, "newest")[1] == ids[-7:]


def test_champion_and_challenger_are_judged_on_batches_neither_was_trained_on() -> None:
    from models.evaluate import split_batches

    ids = [f"N{i:03d}" for i in range(1, 13)] + [f"T{i:03d}" for i in range(13, 17)]
    champion_trained_on = frozenset(ids[:8:2] + ids[1:8:2][:2])  # 6 of the first 8
    train, held = split_batches(ids, 0.33, "spread", champion_trained_on)
    assert len(held) == 5 and not set(held) & champion_trained_on
    assert set(train) | set(held) == set(ids) and "T016" in held
    with pytest.raises(ValueError, match="not trained on"):
        split_batches(ids[:6], 0.33, "spread", frozenset(ids[:5]))


def test_lineage_reads_back_from_its_tags() -> None:
    from models.registry import Lineage

    lineage = Lineage(
        data_version="abc", git_commit="f00", spec_sha256="0" * 64,
        train_batches=["N001", "N002"], holdout_batches=["N003"],
    )  # fmt: skip
    assert Lineage.from_tags({**lineage.tags(), "run_id": "x"}) == lineage


@pytest.mark.parametrize(
    ("champion_rmse", "candidate_rmse", "decision"),
    [(0.97, 1.01, "rejected"),  # as good as naive (1.0), not 5 % better: keeps serving
     (1.02, 1.01, "retired"),  # worse than naive, no candidate 5 % better: retires
     (1.02, 0.90, "champion")],  # worse than naive, a useful candidate replaces it at once
)  # fmt: skip
def test_a_champion_retires_only_when_no_better_than_naive(
    champion_rmse: float, candidate_rmse: float, decision: str
) -> None:
    """Hysteresis: a model enters 5 % better than naive and leaves when it is not better at all,
    so a champion near the naive forecast does not flip the service on and off."""
    best = LoggedCandidate(name="pls", task="soft_sensor", run_id="r", model_uri="m",
                           metrics=m(candidate_rmse, naive=1.0))  # fmt: skip
    champion = m(champion_rmse, naive=1.0)
    gate = offline_gate("pls", best.metrics, champion, 0.05, BOUNDS, naive_margin=0.05)
    assert judge_champion(gate, best, champion, BOUNDS, 0.05).decision == decision


@pytest.mark.parametrize(
    ("candidate_rmse", "live", "decision"),
    [(1.01, None, "rejected"),  # held-out batches from before a change: the champion looks fine
     (1.01, "live: v3 was worse", "retired"),  # but live it is worse than naive: it retires
     (0.90, "live: v3 was worse", "champion")],  # or a useful candidate replaces it at once
)  # fmt: skip
def test_a_champion_worse_than_naive_live_retires_though_held_out_batches_pass(
    candidate_rmse: float, live: str | None, decision: str
) -> None:
    """Right after a process change most held-out batches are from before it, where the old
    champion still beats naive; the monitor's live comparison on its last batches decides."""
    best = LoggedCandidate(name="gp", task="harvest", run_id="r", model_uri="m",
                           metrics=m(candidate_rmse, naive=1.0))  # fmt: skip
    champion = m(0.80, naive=1.0)
    gate = offline_gate("gp", best.metrics, champion, 0.05, BOUNDS, naive_margin=0.05)
    judged = judge_champion(gate, best, champion, BOUNDS, 0.05, live)
    assert judged.decision == decision
    assert live is None or live in judged.reason
