"""When the monitor asks for retraining, and when it holds back."""

from __future__ import annotations

from typing import Any

from monitoring.history import DriftRecord
from monitoring.retrain_policy import decide_retrain

BASE: dict[str, Any] = dict(
    has_champion=True, accepted=30, data_drift=True, concept_alarm=False, reasons=["drift"],
    history=[], pending=False, bootstrap_batches=8, cooldown=3,
)  # fmt: skip


def test_drift_asks_for_retraining() -> None:
    decision = decide_retrain(**BASE)
    assert decision.request and decision.kind == "data"


def test_no_retraining_while_a_challenger_is_rolled_out_or_a_retrain_is_pending() -> None:
    rolling = decide_retrain(**{**BASE, "rollout_active": True})
    assert not rolling.request and "rolled out" in (rolling.suppressed or "")
    assert "pending" in (decide_retrain(**{**BASE, "pending": True}).suppressed or "")


def test_cool_down_counts_batches_since_the_last_request() -> None:
    history = [DriftRecord(batch_id="N001", requested=True), DriftRecord(batch_id="N002")]
    decision = decide_retrain(**{**BASE, "history": history})
    assert not decision.request and (decision.suppressed or "").startswith("cool-down")


def test_bootstrap_waits_for_enough_batches() -> None:
    early = decide_retrain(**{**BASE, "has_champion": False, "accepted": 5})
    assert not early.request and early.reasons == ["5/8 batches for a first model"]
    assert decide_retrain(**{**BASE, "has_champion": False, "accepted": 8}).kind == "bootstrap"
