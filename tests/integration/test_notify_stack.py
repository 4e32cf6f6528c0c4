"""Notifications through the stack's real Prefect server: its automations call a local webhook
receiver when a dropped file is quarantined and when a rollout promotes its challenger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from bioprocessml.serving import rollout
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_decision import Decision
from bioprocessml.serving.rollout_store import start_rollout
from bioprocessml.settings import Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack.notify import WebhookReceiver, install_notifications, remove_notifications
from models.base import Task
from models.registry import CHAMPION, alias_version, set_alias
from tests.conftest import TINY
from tests.integration.conftest import drop, wait_until
from tests.serving.conftest import register_model


@pytest.fixture
def receiver(stack: Settings) -> Iterator[WebhookReceiver]:
    """A local receiver the stack's automations call (removed again: the stack is shared)."""
    local = WebhookReceiver(0).start()
    assert install_notifications(stack, local.url)
    try:
        yield local
    finally:
        with temporary_settings({PREFECT_API_URL: stack.prefect_api_url}):
            remove_notifications()
        local.stop()


def messages(receiver: WebhookReceiver, event: str) -> list[dict[str, Any]]:
    return [m for m in receiver.received if m.get("event") == event]


def test_webhook_on_quarantine_and_promotion(
    stack: Settings,
    receiver: WebhookReceiver,
    spec: DatasetSpec,
    pls: dict[Task, Any],
    training_batches: list[pd.DataFrame],
    tmp_path: Path,
) -> None:
    bad = write_simulated(tmp_path, spec, 2, "corrupt", seed=13, start=980, cfg=TINY)[1]
    drop(bad, stack.incoming_dir)
    [quarantined] = wait_until(
        lambda: [
            m
            for m in messages(receiver, "bioprocess.batch.quarantined")
            if m["payload"]["file"] == bad.name
        ],
        timeout=180,
        what="the quarantine webhook",
    )
    assert quarantined["text"].startswith(f"Quarantined {bad.name}: ")
    assert quarantined["payload"]["reasons"] and quarantined["resource"].startswith("bioprocess.")

    # A promotion decided in another state folder, announced to the same Prefect server.
    other = Settings(
        state_dir=tmp_path / "state",
        data_dir=tmp_path / "data",
        prefect_api_url=stack.prefect_api_url,
    ).prepare()
    example = training_batches[0].head(12)
    old, new = (register_model(other, pls["soft_sensor"], example) for _ in range(2))
    set_alias("soft_sensor", CHAMPION, old)
    state = start_rollout(engine_for(other.prediction_log_url), "soft_sensor", old, new, "test")
    with temporary_settings({PREFECT_API_URL: stack.prefect_api_url}):
        decision = Decision(stage="promoted", reason="better on 5 batches")
        rollout.apply(other, state, decision, "N981", notify=False)
    assert alias_version("soft_sensor", CHAMPION).version == int(new)  # type: ignore[union-attr]
    [promoted] = wait_until(
        lambda: messages(receiver, "bioprocess.model.promoted"),
        timeout=120,
        what="the promotion webhook",
    )
    assert promoted["text"] == (
        f"Promoted bioprocess-soft-sensor v{new} (was v{old}): better on 5 batches"
    )
    assert promoted["payload"]["batch_id"] == "N981"
