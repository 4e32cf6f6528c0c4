"""When to ask for retraining: on drift or degraded error, without retrain storms.

At most one retrain pending at a time, none while a challenger is rolled out, and a cool-down
counted in batches after each request.
With no champion yet, once enough batches are accepted, ask for a bootstrap training instead.
"""

from __future__ import annotations

from pydantic import BaseModel

from monitoring.history import DriftRecord


class RetrainDecision(BaseModel):
    request: bool
    kind: str | None = None
    reasons: list[str] = []
    suppressed: str | None = None


def batches_since_request(history: list[DriftRecord]) -> int | None:
    for back, record in enumerate(reversed(history)):
        if record.requested:
            return back
    return None


def decide_retrain(
    *,
    has_champion: bool,
    accepted: int,
    data_drift: bool,
    concept_alarm: bool,
    reasons: list[str],
    history: list[DriftRecord],
    pending: bool,
    rollout_active: bool = False,
    bootstrap_batches: int,
    cooldown: int,
) -> RetrainDecision:
    """`history` holds the records before this batch; `pending`: a retrain run is queued or running."""
    if not has_champion:
        if accepted < bootstrap_batches:
            return RetrainDecision(
                request=False, reasons=[f"{accepted}/{bootstrap_batches} batches for a first model"]
            )
        kind, reasons = "bootstrap", [f"no champion yet and {accepted} accepted batches"]
    elif data_drift or concept_alarm:
        kind = "+".join(k for k, on in (("data", data_drift), ("concept", concept_alarm)) if on)
    else:
        return RetrainDecision(request=False)
    since = batches_since_request(history)
    if pending:
        return RetrainDecision(
            request=False, kind=kind, reasons=reasons, suppressed="a retrain is already pending"
        )
    if rollout_active:
        return RetrainDecision(
            request=False, kind=kind, reasons=reasons,
            suppressed="a challenger is being rolled out: judged live first",
        )  # fmt: skip
    if since is not None and since < cooldown:
        return RetrainDecision(
            request=False, kind=kind, reasons=reasons,
            suppressed=f"cool-down: last request {since + 1} batch(es) ago, minimum {cooldown + 1}",
        )  # fmt: skip
    return RetrainDecision(request=True, kind=kind, reasons=reasons)
