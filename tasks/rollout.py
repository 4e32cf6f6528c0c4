"""Rollout-stage tasks: start shadowing a challenger, score a finished batch for it."""

from __future__ import annotations

from prefect import get_run_logger, task

from bioprocessml.serving import rollout
from bioprocessml.serving.rollout import as_task
from bioprocessml.settings import Settings


@task(retries=2, retry_delay_seconds=5)
def begin_rollout(task_name: str, version: str, reason: str) -> str:
    state = rollout.begin(Settings(), as_task(task_name), version, reason)
    message = f"{state.task}: version {state.challenger_version} in shadow against champion "
    message += f"version {state.champion_version}"
    get_run_logger().info(message)
    return message


@task(retries=2, retry_delay_seconds=5)
def score_batch(batch_id: str) -> list[str]:
    """Each active rollout's verdict after this batch (one line per task with a rollout)."""
    decisions = rollout.score_batch(Settings(), batch_id)
    lines = [f"{task}: {d.stage} ({d.reason})" for task, d in decisions.items()]
    for line in lines:
        get_run_logger().info(line)
    return lines
