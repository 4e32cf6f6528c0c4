"""When the monitor asks for retraining, of which task, and when it holds back."""

from __future__ import annotations

from typing import Any

from monitoring.history import DriftRecord
from monitoring.retrain_policy import decide_retrain

BOTH = {"soft_sensor": True, "harvest": True}
BASE: dict[str, Any] = dict(
    champions=BOTH, accepted=30, data_drift=True, concept_alarm=False, reasons=["drift"],
    history=[], pending=False, bootstrap_batches=8, cooldown=3,
)  # fmt: skip


def test_drift_asks_for_retraining_of_both_tasks() -> None:
    decision = decide_retrain(**BASE)
    assert decision.request and decision.kind == "data"
    assert decision.tasks == ["soft_sensor", "harvest"]


def test_a_rollout_of_one_task_does_not_block_the_other() -> None:
    decision = decide_retrain(**{**BASE, "rollout_tasks": frozenset({"harvest"})})
    assert decision.request and decision.tasks == ["soft_sensor"]
    assert decision.deferred == ["harvest"]


def test_an_alarm_during_a_rollout_is_deferred_then_acted_on() -> None:
    rolling = decide_retrain(**{**BASE, "rollout_tasks": frozenset({"soft_sensor", "harvest"})})
    assert not rolling.request and "deferred" in (rolling.suppressed or "")
    assert rolling.deferred == ["soft_sensor", "harvest"]
    alarm = DriftRecord(batch_id="N010", deferred=rolling.deferred, kind=rolling.kind)
    quiet = {
        **BASE,
        "data_drift": False,
        "reasons": [],
        "history": [alarm, DriftRecord(batch_id="N011")],
    }
    still = decide_retrain(**{**quiet, "rollout_tasks": frozenset({"soft_sensor"})})
    assert still.request and still.tasks == ["harvest"] and still.kind == "deferred"
    assert "alarm at batch N010 was deferred" in " ".join(still.reasons)
    done = decide_retrain(**quiet)
    assert done.request and done.tasks == ["soft_sensor", "harvest"]
    retrained = DriftRecord(batch_id="N012", requested=True, tasks=["soft_sensor", "harvest"])
    later = decide_retrain(**{**quiet, "history": [*quiet["history"], retrained]})
    assert not later.request


def test_pending_retrain_and_cool_down_hold_back() -> None:
    assert "pending" in (decide_retrain(**{**BASE, "pending": True}).suppressed or "")
    history = [DriftRecord(batch_id="N001", requested=True, tasks=["soft_sensor", "harvest"]),
               DriftRecord(batch_id="N002")]  # fmt: skip
    decision = decide_retrain(**{**BASE, "history": history})
    assert not decision.request and (decision.suppressed or "").startswith("cool-down")


def test_bootstrap_per_task_waits_for_enough_batches_and_asks_again() -> None:
    none = {"soft_sensor": False, "harvest": False}
    early = decide_retrain(**{**BASE, "champions": none, "data_drift": False, "accepted": 5})
    assert not early.request and early.reasons == ["5/8 batches for a first model"]
    first = decide_retrain(**{**BASE, "champions": none, "data_drift": False, "accepted": 8})
    assert first.kind == "bootstrap" and first.tasks == ["soft_sensor", "harvest"]
    # the harvest candidates did not beat the naive forecast: no champion; asked again later
    only_soft = {"soft_sensor": True, "harvest": False}
    asked = DriftRecord(batch_id="N008", requested=True, tasks=["soft_sensor", "harvest"])
    quiet = {**BASE, "champions": only_soft, "data_drift": False, "reasons": []}
    assert not decide_retrain(**{**quiet, "history": [asked]}).request
    later = [asked, *(DriftRecord(batch_id=f"N{i:03d}") for i in range(9, 12))]
    again = decide_retrain(**{**quiet, "history": later})
    assert again.request and again.tasks == ["harvest"] and again.kind == "bootstrap"


def test_the_drift_event_names_the_tasks_to_retrain(monkeypatch: Any) -> None:
    """The retrain flow trains only the tasks the event names (a rollout defers the other)."""
    import tasks.drift

    sent: list[Any] = []
    monkeypatch.setattr(tasks.drift, "emit", lambda event, resource, payload: sent.append(payload))
    record = DriftRecord(batch_id="N010", requested=True, kind="data", tasks=["harvest"])
    tasks.drift.request_retrain.fn(record, "md5")
    assert sent[0].tasks == ["harvest"] and sent[0].kind == "data"


def test_a_champion_worse_than_naive_skips_the_cool_down_of_its_task_only() -> None:
    asked = DriftRecord(batch_id="B1", requested=True, tasks=["soft_sensor", "harvest"])
    calm = {**BASE, "data_drift": False, "reasons": [], "history": [asked]}
    assert not decide_retrain(**calm).request
    decision = decide_retrain(**{**calm, "task_alarms": {"harvest": "naive"}})
    assert decision.request and decision.tasks == ["harvest"] and decision.kind == "naive"
    drifted = decide_retrain(**{**calm, "data_drift": True, "task_alarms": {"harvest": "naive"}})
    assert drifted.tasks == ["harvest"], "the soft sensor still cools down"
