"""Announce the end of a rollout as a chain event (`bioprocess.model.promoted` /
`.rolled_back`), so Prefect automations can notify people (`bioprocessml.stack.notify`).

Best effort by design: a rollout's decision is already stored when this runs, and an events API
that is down must not undo or block it; the failure is logged. Without a Prefect API in the
settings (tests in process, a bare `bentoml serve`) nothing is sent, and that is logged too.
"""

from __future__ import annotations

import logging

from bioprocessml.events import (
    MODEL_PROMOTED,
    MODEL_ROLLED_BACK,
    StagePayload,
    emit,
    model_resource,
)
from bioprocessml.serving.rollout_decision import Decision
from bioprocessml.serving.rollout_store import RolloutState
from models.registry import MODEL_NAMES

log = logging.getLogger(__name__)
EVENTS = {"promoted": MODEL_PROMOTED, "rolled_back": MODEL_ROLLED_BACK}


def announce_stage(state: RolloutState, decision: Decision, batch: str | None) -> str | None:
    """Emit the event of a promotion or rollback; returns its id (None if not sent)."""
    event = EVENTS.get(decision.stage)
    if event is None:
        return None
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        log.info(
            "%s of %s v%s not announced: no PREFECT_API_URL",
            decision.stage,
            state.task,
            state.challenger_version,
        )
        return None
    payload = StagePayload(
        task=state.task,
        model=MODEL_NAMES[state.task],
        version=state.challenger_version,
        champion_version=state.champion_version,
        stage=decision.stage,
        reason=decision.reason,
        batch_id=batch,
    )
    try:
        return emit(event, model_resource(MODEL_NAMES[state.task]), payload)
    except Exception:
        log.exception(
            "announcing the %s of %s v%s failed",
            decision.stage,
            state.task,
            state.challenger_version,
        )
        return None
