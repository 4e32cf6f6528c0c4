"""Commands on batch files: simulate, inspect, spec, scenarios, watch, ingest, quarantine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bioprocessml.cli.app import (
    SpecOption,
    app,
    console,
    load_spec,
    prefect_ready,
    progress,
    quarantine_app,
    spec_app,
)
from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import Settings


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
    from bioprocessml.simulation.generate import write_simulated
    from bioprocessml.simulation.simulator import SCENARIOS, SimConfig

    if scenario not in SCENARIOS:
        raise BioprocessMLError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}"
        )
    dataset = load_spec(spec)
    cfg = SimConfig(duration_h=duration_h, online_interval_min=interval_min)
    with progress() as bar:
        task = bar.add_task(f"simulate {scenario}", total=batches)
        paths = write_simulated(
            out, dataset, batches, scenario, seed=seed, start=start, cfg=cfg,
            on_file=lambda _: bar.advance(task),
        )  # fmt: skip
    console.print(f"wrote {len(paths)} batch files to {out}")


@app.command()
def inspect(
    files: Annotated[list[Path], typer.Argument(help="Batch CSV files.")],
    spec: SpecOption = None,
) -> None:
    """Load batch files through the dataset spec and summarise them."""
    from bioprocessml.dataset import BATCH_ID, TIME, load_batch

    dataset = load_spec(spec)
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
    dataset = load_spec(path)
    table = Table("name", "column", "unit", "canonical", "range", "kind", title=dataset.name)
    for kind, variables in (("online", dataset.online), ("offline", dataset.offline)):
        for var in variables:
            rng = f"{var.range[0]:g} … {var.range[1]:g}" if var.range else "-"
            label = f"{kind}/{var.role}" + (" (target)" if var.name == dataset.target else "")
            table.add_row(var.name, var.column, var.unit, var.canonical_unit, rng, label)
    console.print(table)
    console.print(f"[green]ok[/green] {path} (sha256 {dataset.sha256[:12]})")


@app.command()
def scenarios(
    out: Annotated[
        Path | None, typer.Option(help="Folder (default: <state_dir>/scenarios).")
    ] = None,
    batches: Annotated[int, typer.Option(min=2, help="Normal batches.")] = 20,
) -> None:
    """Simulate every scenario, load the files through the spec, tabulate and plot (no stack)."""
    from bioprocessml.simulation.scenarios import show_scenarios

    settings = Settings()
    show_scenarios(out or settings.state_dir / "scenarios", batches, load_spec(None), console)


@app.command()
def watch() -> None:
    """Watch the incoming folder; announce each complete file as `bioprocess.batch.arrived`."""
    import threading

    from bioprocessml.ingest.announce import announce_file
    from bioprocessml.ingest.watcher import ArrivalWatcher

    settings = Settings().prepare()
    prefect_ready(settings)

    def announce(relative: str, sha256: str, size: int) -> None:
        if announce_file(settings, relative, sha256, size):
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

    from bioprocessml.ingest.announce import announce_file
    from bioprocessml.ingest.watcher import file_sha256

    settings = Settings().prepare()
    prefect_ready(settings)
    incoming = settings.incoming_dir.resolve()
    for path in files:
        if not path.is_file():
            raise BioprocessMLError(f"{path}: file not found")
        target = path.resolve()
        if not target.is_relative_to(incoming):
            target = incoming / path.name
            shutil.copyfile(path, target)
        relative = str(target.relative_to(incoming))
        announce_file(settings, relative, file_sha256(target), target.stat().st_size)
        console.print(f"announced {relative}")


@quarantine_app.command("list")
def quarantine_list() -> None:
    """List quarantined files with their first reason."""
    from bioprocessml.ingest.quarantine import list_quarantined

    table = Table("id", "file", "reasons")
    for item in list_quarantined(Settings().quarantine_dir):
        table.add_row(item.quarantine_id, item.file, item.reasons[0] if item.reasons else "")
    console.print(table)


@quarantine_app.command("show")
def quarantine_show(quarantine_id: Annotated[str, typer.Argument(help="Id from `list`.")]) -> None:
    """Show every reason a file was quarantined, and where its bytes and Data Docs are."""
    from bioprocessml.ingest.quarantine import load_quarantined

    settings = Settings()
    item = load_quarantined(settings.quarantine_dir, quarantine_id)
    console.print(f"[bold]{item.quarantine_id}[/bold]  {item.file}  sha256 {item.sha256}")
    for reason in item.reasons:
        console.print(f"  • {reason}")
    folder = (settings.quarantine_dir / item.quarantine_id).resolve()
    console.print(f"original bytes: {folder}")
    if item.data_docs:
        console.print(f"Data Docs: {folder / item.data_docs}")
