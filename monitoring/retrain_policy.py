"""When to ask for retraining, and of which task: on drift or degraded error, without storms.

Per task: no request while that task's challenger is rolled out (the alarm is deferred and acted
on when the rollout ends), and a cool-down counted in batches after each request, except for a
champion worse than the naive forecast (it must not serve a batch longer than needed). At most one
retraining pending at a time. A task with no champion yet (the first models, or a bootstrap
whose candidates did not beat the naive forecast) asks for a bootstrap training once enough
batches are accepted, and again after each cool-down.
"""

from __future__ import annotations

from pydantic import BaseModel

from models.base import TASKS, Task
from monitoring.history import DriftRecord


class RetrainDecision(BaseModel):
    request: bool
    kind: str | None = None
    reasons: list[str] = []
    suppressed: str | None = None
    tasks: list[Task] = []
    deferred: list[Task] = []


def batches_since_request(history: list[DriftRecord], task: Task) -> int | None:
    """Batches checked since the last request that included `task` (0: the previous batch)."""
    for back, record in enumerate(reversed(history)):
        if record.requested and task in record.tasks:
            return back
    return None


def deferred_alarms(history: list[DriftRecord]) -> dict[Task, str]:
    """Tasks whose alarm was deferred during their rollout and not retrained since, with the
    batch that raised it."""
    open_: dict[Task, str] = {}
    for record in history:
        for task in record.tasks if record.requested else []:
            open_.pop(task, None)
        for task in record.deferred:
            open_.setdefault(task, record.batch_id)
    return open_


def wanted_tasks(
    champions: dict[Task, bool], accepted: int, alarm: str | None, history: list[DriftRecord],
    bootstrap_batches: int, task_alarms: dict[Task, str],
) -> tuple[dict[Task, str], list[str]]:  # fmt: skip
    """Which tasks would be retrained, each with its kind, and the reasons to add: drift of the
    data or the concept concerns every task; `task_alarms` (a champion worse than the naive
    forecast) only its own."""
    wanted: dict[Task, str] = {}
    reasons: list[str] = []
    missing = [t for t in TASKS if not champions[t]]
    if missing and accepted >= bootstrap_batches:
        wanted |= dict.fromkeys(missing, "bootstrap")
        reasons.append(f"no champion yet for {', '.join(missing)} and {accepted} accepted batches")
    if alarm is not None:
        wanted |= {t: alarm for t in TASKS if champions[t]}
    for task, kind in task_alarms.items():
        if champions[task]:
            wanted[task] = "+".join(sorted({*wanted.get(task, "").split("+"), kind} - {""}))
    for task, batch in deferred_alarms(history).items():
        if champions[task] and task not in wanted:
            wanted[task] = "deferred"
            reasons.append(f"{task}: alarm at batch {batch} was deferred during its rollout")
    return wanted, reasons


def decide_retrain(
    *,
    champions: dict[Task, bool],
    accepted: int,
    data_drift: bool,
    concept_alarm: bool,
    reasons: list[str],
    history: list[DriftRecord],
    pending: bool,
    rollout_tasks: frozenset[str] = frozenset(),
    bootstrap_batches: int,
    cooldown: int,
    task_alarms: dict[Task, str] | None = None,
) -> RetrainDecision:
    """`history` holds the records before this batch; `pending`: a retrain run is queued or
    running; `rollout_tasks`: tasks whose challenger is being rolled out now."""
    alarm = "+".join(k for k, on in (("data", data_drift), ("concept", concept_alarm)) if on)
    wanted, more = wanted_tasks(
        champions, accepted, alarm or None, history, bootstrap_batches, task_alarms or {}
    )
    reasons = [*reasons, *more]
    if not wanted:
        missing = [t for t in TASKS if not champions[t]]
        waiting = f"{accepted}/{bootstrap_batches} batches for a first model" if missing else None
        return RetrainDecision(request=False, reasons=[waiting] if waiting else reasons)
    deferred = [t for t in wanted if t in rollout_tasks]
    free = [t for t in wanted if t not in rollout_tasks]
    cooling = {
        t: s for t in free
        if "naive" not in wanted[t].split("+")  # worse than doing nothing: no waiting
        and (s := batches_since_request(history, t)) is not None and s < cooldown
    }  # fmt: skip
    ready = [t for t in free if t not in cooling]
    kind = "+".join(sorted({k for t, k in wanted.items() if t in (ready or wanted)}))
    base = RetrainDecision(request=False, kind=kind, reasons=reasons, deferred=deferred)
    if deferred and not free:
        return base.model_copy(update={"suppressed": f"rollout of {', '.join(deferred)} is live: "
                                       "retraining deferred until it ends"})  # fmt: skip
    if pending:
        return base.model_copy(update={"suppressed": "a retrain is already pending"})
    if not ready:
        since = min(cooling.values())
        return base.model_copy(update={"suppressed": f"cool-down: last request {since + 1} "
                                       f"batch(es) ago, minimum {cooldown + 1}"})  # fmt: skip
    return base.model_copy(update={"request": True, "tasks": ready})
