"""The Prefect server's own scheduler creates the reconcile flow's runs (the deployment's
interval schedule): with SQLAlchemy 2.1 its bulk insert of scheduled runs failed on every tick,
so reconcile ran only when someone started it."""

from __future__ import annotations

import pytest

from bioprocessml.settings import Settings
from tests.stack import flow_runs, wait_until

pytestmark = pytest.mark.integration


def test_the_reconcile_schedule_creates_and_runs_flow_runs(stack: Settings) -> None:
    def completed() -> list[dict[str, object]]:
        runs = flow_runs(stack, "every-interval")
        return [r for r in runs if r["state_type"] == "COMPLETED"]

    runs = wait_until(completed, 3 * stack.runtime.reconcile_seconds + 60, "a scheduled reconcile")
    assert all(r["auto_scheduled"] for r in runs), "runs come from the server's scheduler"
