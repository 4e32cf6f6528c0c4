"""Commands on models: retrain, drift history, rollout status and rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bioprocessml.cli.app import TaskOption, app, console, drift_app, prefect_ready, rollout_app
from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import Settings


@app.command()
def retrain(
    reason: Annotated[str, typer.Option(help="Recorded on the MLflow run.")] = "manual",
    data_version: Annotated[
        str | None, typer.Option(help="DVC md5 of the accepted data (default: current).")
    ] = None,
    task: TaskOption = None,
) -> None:
    """Retrain every candidate on the accepted batches now (the same flow the drift event runs)."""
    settings = Settings()
    prefect_ready(settings)
    from flows.retrain import retrain as retrain_flow

    table = Table("task", "decision", "candidate", "version", "reason")
    for outcome in retrain_flow(reason=reason, data_version=data_version, tasks=task or ""):
        table.add_row(
            outcome.task,
            outcome.decision,
            outcome.candidate,
            outcome.version or "-",
            outcome.reason,
        )
    console.print(table)


@drift_app.command("history")
def drift_history(
    plot: Annotated[
        Path | None, typer.Option(help="Trend plot PNG (default: in the reports folder).")
    ] = None,
) -> None:
    """Table of every checked batch (drift, champion error, decision) and a trend plot."""
    from monitoring.history import load_history
    from monitoring.trend import plot_history

    settings = Settings()
    records = load_history(settings.reports_dir)
    if not records:
        raise BioprocessMLError(f"no drift records in {settings.reports_dir}: no batch checked yet")
    table = Table("batch", "champion", "data drift", "columns", "error ratio", "CUSUM", "decision")
    for r in records:
        decision = f"retrain ({r.kind})" if r.requested else (r.suppressed or "-")
        ratio = f"{r.error_ratio:.2f}" if r.error_ratio is not None else "-"
        table.add_row(r.batch_id, r.champion_version or "-", "yes" if r.data_drift else "no",
                      ",".join(r.drifted_columns) or "-", ratio, f"{r.cusum:.2f}", decision)  # fmt: skip
    console.print(table)
    t = settings.thresholds
    target = plot or settings.reports_dir / "drift_history.png"
    console.print(f"trend plot: {plot_history(records, target, t.drift_share, t.cusum_h)}")


@app.command()
def rollback(
    task: TaskOption = None,
    reason: Annotated[str, typer.Option(help="Recorded with the stage change.")] = "by hand",
) -> None:
    """Roll back now: end the active rollout, or with none, restore the previous champion."""
    from bioprocessml.serving.rollout import RolloutError, as_task, roll_back
    from models.base import TASKS

    settings = Settings()
    if task is not None:
        console.print(roll_back(settings, as_task(task), f"manual: {reason}"))
        return
    done = 0
    for name in TASKS:
        try:
            console.print(roll_back(settings, name, f"manual: {reason}"))
            done += 1
        except RolloutError as exc:
            console.print(f"{exc}: skipped")
    if not done:
        raise BioprocessMLError("nothing to roll back: no active rollout, no previous champion")


@rollout_app.command("status")
def rollout_status() -> None:
    """Every rollout stage change so far, with its statistical reason."""
    from bioprocessml.serving.db import engine_for
    from bioprocessml.serving.rollout_store import transitions

    settings = Settings()
    table = Table("time (UTC)", "task", "challenger", "stage", "batch", "reason")
    for t in transitions(engine_for(settings.prediction_log_url)):
        table.add_row(f"{t.at:%Y-%m-%d %H:%M:%S}", t.task, t.challenger_version, t.stage,
                      t.batch_id or "-", t.reason)  # fmt: skip
    console.print(table)
