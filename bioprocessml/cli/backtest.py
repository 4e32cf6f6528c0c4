"""`bioprocessml backtest`: replay a plant's history through the chain's decisions, offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bioprocessml.cli.app import SpecOption, app, console
from bioprocessml.settings import Settings

if TYPE_CHECKING:
    from bioprocessml.backtest.replay import Step


@app.command()
def backtest(
    source: Annotated[
        Path, typer.Argument(help="Folder of historical batch files (searched recursively).")
    ],
    labels: Annotated[
        Path | None, typer.Option(help="CSV batch_id,label: `normal` or the name of a change.")
    ] = None,
    order: Annotated[
        str,
        typer.Option(help="Arrival order: name (natural sort), labels (the CSV's rows), mtime."),
    ] = "name",
    out: Annotated[Path, typer.Option(help="Folder for scorecard.md/.json/.png.")] = Path(
        "backtest"
    ),
    state: Annotated[
        Path | None, typer.Option(help="Keep the replay's state here (default: a temp folder).")
    ] = None,
    pattern: Annotated[str, typer.Option("--glob", help="Which files are batches.")] = "*.csv",
    spec: SpecOption = None,
) -> None:
    """Replay batch files in arrival order through validation, drift checks, retraining, the
    gate and rollouts (a client asks at 25/50/75/100 % of each batch), without servers; write a
    timeline and a scorecard of every decision, to tune thresholds before going live."""
    from rich.progress import Progress

    from bioprocessml.backtest.run import find_files, run_backtest

    settings = Settings()
    if spec is not None:
        settings = settings.model_copy(update={"spec_path": spec})
    total = len(find_files(source, {}, order, pattern, labels))  # labels are matched later
    with Progress(console=console) as bar:
        task = bar.add_task("replaying", total=total)

        def show(step: Step) -> None:
            record = step.record
            note = step.verdict
            if record is not None and (record.data_drift or record.concept_alarm):
                note += f", drift {','.join(record.drifted_columns[:3]) or 'concept'}"
            if step.retrain:
                note += ", retrained: " + "; ".join(f"{o.task} {o.decision}" for o in step.retrain)
            bar.console.print(
                f"{step.order:>3} {step.batch_id or step.file}: {note}", soft_wrap=True
            )
            bar.advance(task)

        card = run_backtest(settings, source, out, labels, order, state, show, pattern)
    t = card.totals
    console.print(
        f"false data-drift alarms on normal batches: {len(t.false_alarms)} of {t.normal_after_warmup}"
    )
    for c in t.changes:
        drift = (f", data drift at batch {c.data_drift_delay} ({', '.join(c.columns[:3])})"
                 if c.data_drift_delay else ", no data drift")  # fmt: skip
        console.print(f"{c.label}: " + (f"first alarm at batch {c.delay} of the change" if c.delay
                                        else "not flagged") + drift)  # fmt: skip
    console.print(f"scorecard: {out / 'scorecard.md'} ({card.seconds / 60:.1f} min)")
