"""Rollout flow: `bioprocess.model.challenger` starts a shadow rollout; each
`bioprocess.batch.accepted` scores the finished batch and may move it to canary, promote it or
roll it back (see prefect.yaml)."""

from __future__ import annotations

from prefect import flow

from tasks.rollout import begin_rollout, score_batch


@flow(name="rollout", log_prints=True)
def advance_rollout(
    task: str | None = None, version: str | None = None, batch_id: str | None = None,
    reason: str = "",
) -> list[str]:  # fmt: skip
    """Start a rollout (`task` and `version` given) or judge one batch (`batch_id` given)."""
    lines = []
    # --- begin: the new challenger shadows the champion ---
    if task is not None and version is not None:
        lines.append(begin_rollout(task, version, reason))
    # --- judge: paired errors of the finished batch, then the stage decision ---
    if batch_id is not None:
        lines.extend(score_batch(batch_id))
    return lines
