"""Commands on models: retrain, drift history, rollout status and rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from bioprocessml.cli.app import (
    JsonOption,
    TaskOption,
    app,
    console,
    drift_app,
    prefect_ready,
    rollout_app,
    show_rows,
)
from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import Settings


@app.command()
def retrain(
    reason: Annotated[str, typer.Option(help="Recorded on the MLflow run.")] = "manual",
    data_version: Annotated[
        str | None, typer.Option(help="DVC md5 of the accepted data (default: current).")
    ] = None,
    task: TaskOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain every candidate on the accepted batches now (the same flow the drift event runs)."""
    settings = Settings()
    prefect_ready(settings)
    from flows.retrain import retrain as retrain_flow

    rows = [
        {"task": o.task, "decision": o.decision, "candidate": o.candidate, "version": o.version,
         "reason": o.reason}
        for o in retrain_flow(reason=reason, data_version=data_version, tasks=task or "")
    ]  # fmt: skip
    show_rows(rows, {k: k for k in ("task", "decision", "candidate", "version", "reason")},
              as_json=as_json)  # fmt: skip


@drift_app.command("history")
def drift_history(
    plot: Annotated[
        Path | None, typer.Option(help="Trend plot PNG (default: in the reports folder).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Table of every checked batch (drift, champion error, decision) and a trend plot (with
    --json: every record as JSON, no plot)."""
    from monitoring.history import load_history

    settings = Settings()
    records = load_history(settings.reports_dir)
    if not records:
        raise BioprocessMLError(f"no drift records in {settings.reports_dir}: no batch checked yet")
    if as_json:
        show_rows([r.model_dump(mode="json") for r in records], {}, as_json=True)
        return
    rows = [
        r.model_dump() | {"decision": f"retrain ({r.kind})" if r.requested else r.suppressed}
        for r in records
    ]
    columns = {"batch_id": "batch", "champion_version": "champion", "data_drift": "data drift",
               "drifted_columns": "columns", "error_ratio": "error ratio", "cusum": "CUSUM",
               "decision": "decision"}  # fmt: skip
    formats = {"error_ratio": lambda v: "-" if v is None else f"{v:.2f}", "cusum": "{:.2f}".format}
    show_rows(rows, columns, as_json=False, formats=formats)
    from monitoring.trend import plot_history

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
            console.print(f"{escape(str(exc))}: skipped")
    if not done:
        raise BioprocessMLError("nothing to roll back: no active rollout, no previous champion")


@rollout_app.command("status")
def rollout_status(as_json: JsonOption = False) -> None:
    """Every rollout stage change so far, with its statistical reason."""
    from bioprocessml.serving.db import engine_for
    from bioprocessml.serving.rollout_store import transitions

    url = Settings().prediction_log_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        rows = []  # no prediction log yet: nothing was rolled out (and nothing to create)
    else:
        rows = [t.model_dump(mode="json") for t in transitions(engine_for(url))]
    columns = {"at": "time (UTC)", "task": "task", "challenger_version": "challenger",
               "stage": "stage", "batch_id": "batch", "reason": "reason"}  # fmt: skip
    formats = {"at": lambda at: str(at).replace("T", " ")[:19]}
    show_rows(rows, columns, as_json=as_json, formats=formats)
