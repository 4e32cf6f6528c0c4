"""The `bioprocessml` command: a thin door onto the same functions the flows call.

User mistakes (bad spec, missing file, wrong option) end in one red line and a non-zero exit,
never a traceback. Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import Settings, disable_telemetry

if TYPE_CHECKING:
    from bioprocessml.spec import DatasetSpec

app = typer.Typer(
    name="bioprocessml",
    help="Event-driven MLOps for bioprocess (fermentation) batch data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
spec_app = typer.Typer(help="Dataset specs: describe your batch files.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
quarantine_app = typer.Typer(help="Files that failed validation.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
drift_app = typer.Typer(help="Drift monitoring of accepted batches.", no_args_is_help=True)
app.add_typer(drift_app, name="drift")
rollout_app = typer.Typer(
    help="Challenger rollouts in the prediction service.", no_args_is_help=True
)
app.add_typer(rollout_app, name="rollout")
console = Console()
err_console = Console(stderr=True)

SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="Dataset spec YAML (default: settings' spec_path)."),
]


@app.callback()
def _main() -> None:
    disable_telemetry()


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _load_spec(path: Path | None) -> DatasetSpec:
    from bioprocessml.spec import load_spec

    return load_spec(path or Settings().spec_path)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write batch CSVs into.")],
    batches: Annotated[int, typer.Option("--batches", "-n", min=1, help="How many.")] = 20,
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            "-s",
            help="normal | feed-change | raw-material | sensor-drift | stuck-sensor | corrupt",
        ),
    ] = "normal",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
    start: Annotated[int, typer.Option(min=0, help="Number of the first batch id.")] = 1,
    interval_min: Annotated[float, typer.Option(min=0.5, help="Online sampling [min].")] = 5.0,
    duration_h: Annotated[float, typer.Option(min=12, help="Batch duration [h].")] = 96.0,
    spec: SpecOption = None,
) -> None:
    """Simulate fed-batch fermentation batches, one CSV per batch, in a dataset spec's format."""
    from bioprocessml.generate import write_simulated
    from bioprocessml.simulator import SCENARIOS, SimConfig

    if scenario not in SCENARIOS:
        raise BioprocessMLError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}"
        )
    dataset = _load_spec(spec)
    cfg = SimConfig(duration_h=duration_h, online_interval_min=interval_min)
    with _progress() as progress:
        task = progress.add_task(f"simulate {scenario}", total=batches)
        paths = write_simulated(
            out, dataset, batches, scenario, seed=seed, start=start, cfg=cfg,
            on_file=lambda _: progress.advance(task),
        )  # fmt: skip
    console.print(f"wrote {len(paths)} batch files to {out}")


@app.command()
def inspect(
    files: Annotated[list[Path], typer.Argument(help="Batch CSV files.")],
    spec: SpecOption = None,
) -> None:
    """Load batch files through the dataset spec and summarise them."""
    from bioprocessml.dataset import BATCH_ID, TIME, load_batch

    dataset = _load_spec(spec)
    table = Table("file", "batch", "rows", "hours", f"{dataset.target} at end", "missing cells")
    for path in files:
        frame = load_batch(path, dataset)
        target = frame[dataset.target].dropna()
        online = frame[[v.name for v in dataset.online]]
        table.add_row(
            path.name,
            str(frame[BATCH_ID].iloc[0]),
            str(len(frame)),
            f"{frame[TIME].max() - frame[TIME].min():.1f}",
            f"{target.iloc[-1]:.3g}" if len(target) else "-",
            f"{online.isna().mean().mean():.1%}",
        )
    console.print(table)


@spec_app.command("check")
def spec_check(path: Annotated[Path, typer.Argument(help="Dataset spec YAML.")]) -> None:
    """Validate a dataset spec and show how its columns map to canonical names and units."""
    dataset = _load_spec(path)
    table = Table("name", "column", "unit", "canonical", "range", "kind", title=dataset.name)
    for kind, variables in (("online", dataset.online), ("offline", dataset.offline)):
        for var in variables:
            rng = f"{var.range[0]:g} … {var.range[1]:g}" if var.range else "-"
            label = f"{kind}/{var.role}" + (" (target)" if var.name == dataset.target else "")
            table.add_row(var.name, var.column, var.unit, var.canonical_unit, rng, label)
    console.print(table)
    console.print(f"[green]ok[/green] {path} (sha256 {dataset.sha256[:12]})")


@app.command()
def config() -> None:
    """Print the effective settings (from BIOPROCESSML_* variables and .env)."""
    settings = Settings()
    console.print_json(settings.model_dump_json())
    console.print(f"MLflow tracking URI: {settings.tracking_uri}")


@app.command()
def scenarios(
    out: Annotated[
        Path | None, typer.Option(help="Folder (default: <state_dir>/scenarios).")
    ] = None,
    batches: Annotated[int, typer.Option(min=2, help="Normal batches.")] = 20,
) -> None:
    """Simulate every scenario, load the files through the spec, tabulate and plot (no stack)."""
    from bioprocessml.scenarios import show_scenarios

    settings = Settings()
    show_scenarios(out or settings.state_dir / "scenarios", batches, _load_spec(None), console)


@app.command()
def demo(
    quick: Annotated[
        bool, typer.Option(help="Shorter run: 10 normal batches, first model after 6, PLS + GP.")
    ] = False,
    changed: Annotated[
        int, typer.Option(min=3, help="Most batches after the process change.")
    ] = 14,
) -> None:
    """The campaign, live: start the stack, drop batch files into incoming/ and watch the chain
    bootstrap a champion, quarantine bad files, detect drift, retrain, roll out and roll back."""
    from bioprocessml.campaign import CampaignPlan, demo_settings, run_campaign
    from bioprocessml.timeline import build_timeline, format_timeline

    settings = demo_settings(Settings(), quick)
    plan = CampaignPlan(normal=10 if quick else 20, changed=changed)
    started = time.monotonic()

    def say(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.0f} s[/dim]  {text}")

    report, seconds = run_campaign(settings, plan, say)
    rows = build_timeline(settings)
    text = format_timeline(rows)
    (settings.state_dir / "campaign" / "timeline.txt").write_text(text + "\n")
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    if report is not None:
        console.print(f"/predict calls: {report.sent} sent, {report.failed} failed, "
                      f"p50 {report.p50_ms:.0f} ms, p99 {report.p99_ms:.0f} ms")  # fmt: skip
    console.print(f"campaign: {seconds / 60:.1f} min")
    _print_urls(settings)
    console.print("the stack keeps running for you to look around; stop it with `make stop`")


def _print_urls(settings: Settings) -> None:
    prefect = settings.prefect_api_url.removesuffix("/api")
    mlflow = f"http://127.0.0.1:{settings.mlflow_ui_port}"
    docs = sorted(settings.quarantine_dir.resolve().glob("*/**/index.html"))
    for name, url in [
        ("Prefect deployments", f"{prefect}/deployments"), ("Prefect events", f"{prefect}/events"),
        ("Prefect flow runs", f"{prefect}/runs"), ("MLflow runs", f"{mlflow}/#/experiments"),
        ("MLflow registry (aliases)", f"{mlflow}/#/models"),
        ("BentoML Swagger UI", settings.serving.url),
        ("Evidently reports", str(settings.reports_dir.resolve())),
        ("GX Data Docs", str(docs[0]) if docs else "none"),
    ]:  # fmt: skip
        console.print(f"  {name:<26} {url}")


def _prefect_ready(settings: Settings) -> None:
    """Point Prefect clients at the configured server and fail early if it is not there."""
    import os
    import urllib.request
    from urllib.error import URLError

    os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    try:
        urllib.request.urlopen(f"{settings.prefect_api_url}/health", timeout=5).close()
    except (URLError, OSError):
        raise BioprocessMLError(
            f"no Prefect server at {settings.prefect_api_url}: start the stack with `bioprocessml up`"
        ) from None


@app.command()
def up(
    watch: Annotated[bool, typer.Option(help="Also start the incoming-folder watcher.")] = True,
) -> None:
    """Start the embedded stack: Prefect server (SQLite), deployments, a worker, the watcher and
    the BentoML prediction service."""
    from bioprocessml.stack import up as start

    settings = Settings()
    with console.status("starting Prefect server, deploying flows, worker, service…"):
        start(settings, watch=watch)
    console.print(f"Prefect UI: {settings.prefect_api_url.removesuffix('/api')}")
    console.print(f"prediction service (Swagger UI): {settings.serving.url}")
    console.print(f"drop batch files into {settings.incoming_dir.resolve()}")


@app.command()
def down() -> None:
    """Stop every process `bioprocessml up` started for this state folder."""
    from bioprocessml.stack import down as stop

    stopped = stop(Settings())
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def watch() -> None:
    """Watch the incoming folder; announce each complete file as `bioprocess.batch.arrived`."""
    import threading

    from bioprocessml.events import announce_arrival
    from bioprocessml.watcher import ArrivalWatcher

    settings = Settings().prepare()
    _prefect_ready(settings)

    def announce(relative: str, sha256: str, size: int) -> None:
        announce_arrival(relative, sha256, size)
        console.print(f"arrived: {relative} ({size} bytes)")

    watcher = ArrivalWatcher(settings.incoming_dir, announce, settle=settings.watch_settle_seconds)
    console.print(f"watching {settings.incoming_dir.resolve()} (Ctrl-C to stop)")
    stop = threading.Event()
    try:
        watcher.run(stop)
    except KeyboardInterrupt:
        stop.set()


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Batch files (copied into incoming/).")],
) -> None:
    """Announce files by hand (backfills): copy each into incoming/ and emit its arrival event."""
    import shutil

    from bioprocessml.events import announce_arrival
    from bioprocessml.watcher import file_sha256

    settings = Settings().prepare()
    _prefect_ready(settings)
    incoming = settings.incoming_dir.resolve()
    for path in files:
        if not path.is_file():
            raise BioprocessMLError(f"{path}: file not found")
        target = path.resolve()
        if not target.is_relative_to(incoming):
            target = incoming / path.name
            shutil.copyfile(path, target)
        relative = str(target.relative_to(incoming))
        announce_arrival(relative, file_sha256(target), target.stat().st_size)
        console.print(f"announced {relative}")


@app.command()
def retrain(
    reason: Annotated[str, typer.Option(help="Recorded on the MLflow run.")] = "manual",
    data_version: Annotated[
        str | None, typer.Option(help="DVC md5 of the accepted data (default: current).")
    ] = None,
) -> None:
    """Retrain every candidate on the accepted batches now (the same flow the drift event runs)."""
    settings = Settings()
    _prefect_ready(settings)
    from flows.retrain import retrain as retrain_flow

    table = Table("task", "decision", "candidate", "version", "reason")
    for outcome in retrain_flow(reason=reason, data_version=data_version):
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


TaskOption = Annotated[
    str | None,
    typer.Option("--task", help="soft_sensor or harvest (default: both)."),
]


@app.command()
def rollback(
    task: TaskOption = None,
    reason: Annotated[str, typer.Option(help="Recorded with the stage change.")] = "by hand",
) -> None:
    """Roll back now: end the active rollout, or with none, restore the previous champion."""
    from bioprocessml.rollout import RolloutError, as_task, roll_back
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
    from monitoring.rollout_store import transitions
    from monitoring.serving_db import engine_for

    settings = Settings()
    table = Table("time (UTC)", "task", "challenger", "stage", "batch", "reason")
    for t in transitions(engine_for(settings.prediction_log_url)):
        table.add_row(f"{t.at:%Y-%m-%d %H:%M:%S}", t.task, t.challenger_version, t.stage,
                      t.batch_id or "-", t.reason)  # fmt: skip
    console.print(table)


@quarantine_app.command("list")
def quarantine_list() -> None:
    """List quarantined files with their first reason."""
    from bioprocessml.quarantine import list_quarantined

    table = Table("id", "file", "reasons")
    for item in list_quarantined(Settings().quarantine_dir):
        table.add_row(item.quarantine_id, item.file, item.reasons[0] if item.reasons else "")
    console.print(table)


@quarantine_app.command("show")
def quarantine_show(quarantine_id: Annotated[str, typer.Argument(help="Id from `list`.")]) -> None:
    """Show every reason a file was quarantined, and where its bytes and Data Docs are."""
    from bioprocessml.quarantine import load_quarantined

    settings = Settings()
    item = load_quarantined(settings.quarantine_dir, quarantine_id)
    console.print(f"[bold]{item.quarantine_id}[/bold]  {item.file}  sha256 {item.sha256}")
    for reason in item.reasons:
        console.print(f"  • {reason}")
    folder = (settings.quarantine_dir / item.quarantine_id).resolve()
    console.print(f"original bytes: {folder}")
    if item.data_docs:
        console.print(f"Data Docs: {folder / item.data_docs}")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        app()
    except BioprocessMLError as exc:
        err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        sys.exit(1)
