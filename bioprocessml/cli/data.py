"""Commands on batch files: simulate, inspect, spec, scenarios, watch, ingest, quarantine."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from bioprocessml.cli.app import (
    JsonOption,
    SpecOption,
    app,
    console,
    load_spec,
    prefect_ready,
    print_json,
    progress,
    quarantine_app,
    show_rows,
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
    as_json: JsonOption = False,
) -> None:
    """Load batch files through the dataset spec and summarise them; a file that cannot be
    read, or has unreadable times, gets its problem in the table and the exit code 1, after
    every other file."""
    from bioprocessml.dataset import BATCH_ID, TIME, load_batch

    dataset = load_spec(spec)
    if missing := [str(p) for p in files if not p.is_file()]:
        raise BioprocessMLError(f"{', '.join(missing)}: file not found")
    end = f"{dataset.target} at end ({dataset.variable(dataset.target).canonical_unit})"
    columns = {"file": "file", "batch_id": "batch", "rows": "rows", "hours": "hours",
               "target_at_end": end, "missing_online": "missing cells (online)",
               "problem": "problem"}  # fmt: skip
    rows: list[dict[str, Any]] = []
    for path in files:
        try:
            frame = load_batch(path, dataset)
        except BioprocessMLError as exc:
            problem = str(exc).removeprefix(f"{path.name}: ")
            rows.append(dict.fromkeys(columns) | {"file": path.name, "problem": problem})
            continue
        target = frame[dataset.target].dropna()
        online = frame[[v.name for v in dataset.online]]
        unreadable = int(frame[TIME].isna().sum())
        span = float(frame[TIME].max() - frame[TIME].min())
        rows.append({
            "file": path.name, "batch_id": str(frame[BATCH_ID].iloc[0]), "rows": len(frame),
            "hours": round(span, 3) if math.isfinite(span) else None,
            "target_at_end": float(target.iloc[-1]) if len(target) else None,
            "missing_online": round(float(online.isna().mean().mean()), 4),
            "problem": f"{unreadable} time values unreadable" if unreadable else None,
        })  # fmt: skip
    formats = {
        "hours": lambda v: "-" if v is None else f"{v:.1f}",
        "missing_online": lambda v: "-" if v is None else f"{v:.1%}",
    }
    show_rows(rows, columns, as_json=as_json, formats=formats)
    if any(row["problem"] for row in rows):
        raise typer.Exit(1)


@spec_app.command("check")
def spec_check(
    path: Annotated[Path, typer.Argument(help="Dataset spec YAML.")], as_json: JsonOption = False
) -> None:
    """Validate a dataset spec and show how its columns map to canonical names and units."""
    dataset = load_spec(path)
    rows: list[dict[str, Any]] = []
    for kind, variables in (("online", dataset.online), ("offline", dataset.offline),
                            ("unmeasured", dataset.unmeasured)):  # fmt: skip
        rows += [{
            "name": v.name, "column": v.column, "unit": v.unit, "canonical_unit": v.canonical_unit,
            "dimension": v.dimension, "range": list(v.range) if v.range else None, "kind": kind,
            "role": v.role, "optional": v.optional, "target": v.name == dataset.target,
        } for v in variables]  # fmt: skip
    if as_json:
        print_json({"name": dataset.name, "path": str(path), "sha256": dataset.sha256,
                    "target": dataset.target, "variables": rows})  # fmt: skip
        return
    columns = {"name": "name", "column": "column", "unit": "unit", "canonical_unit": "canonical",
               "range": "range", "label": "kind"}  # fmt: skip
    for row in rows:
        marks = [m for m, on in (("target", row["target"]), ("optional", row["optional"])) if on]
        row["label"] = f"{row['kind']}/{row['role']}" + "".join(f" ({m})" for m in marks)
    formats = {"range": lambda r: f"{r[0]:g} … {r[1]:g}" if r else "-"}
    show_rows(rows, columns, as_json=False, title=dataset.name, formats=formats)
    console.print(f"[green]ok[/green] {path} (sha256 {dataset.sha256[:12]})")


@spec_app.command("draft")
def spec_draft(
    files: Annotated[
        list[Path], typer.Argument(help="Batch CSV files; with several, ranges span them all.")
    ],
    target: Annotated[
        str | None, typer.Option("--target", help="Column to predict (e.g. an offline assay).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the spec here (default: print it).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
) -> None:
    """Draft a dataset spec from your batch files; every guess is marked with a comment."""
    from bioprocessml.spec_draft import draft_spec

    for path in files:
        if not path.is_file():
            raise BioprocessMLError(f"{path}: file not found")
    if out is not None and out.exists() and not force:
        raise BioprocessMLError(f"{out} exists: choose another --out or add --force")
    text = draft_spec(files, target)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(
        f"wrote {out}: check the guesses (# comments), then `bioprocessml spec check {out}`"
    )


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
    prefect_ready(settings, wait=300)

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
def quarantine_list(as_json: JsonOption = False) -> None:
    """List quarantined files with their first reason (all of them with --json)."""
    from bioprocessml.ingest.quarantine import list_quarantined

    rows = [
        {"id": q.quarantine_id, "file": q.file, "batch_id": q.batch_id, "reasons": q.reasons}
        for q in list_quarantined(Settings().quarantine_dir)
    ]
    columns = {"id": "id", "file": "file", "reasons": "first reason"}
    show_rows(rows, columns, as_json=as_json, formats={"reasons": lambda r: r[0] if r else ""})


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
