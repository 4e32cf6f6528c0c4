"""Rollout flow: `bioprocess.model.challenger` starts a shadow rollout (see prefect.yaml). Each
finished batch then scores it in the drift flow, which may move it to canary, promote it or roll
it back."""

from __future__ import annotations

from prefect import flow

from tasks.rollout import begin_rollout


@flow(name="rollout", log_prints=True)
def start_rollout(task: str, version: str, reason: str = "") -> str:
    """The new challenger shadows the champion in the running service from now on."""
    return begin_rollout(task, version, reason)
