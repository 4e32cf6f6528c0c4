"""The CLI's shared ground: the Typer app and its command groups, consoles and helpers."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.error import URLError

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

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

# Piped or redirected output has no width to fit: lines as long as their content, none cut.
UNCUT_WIDTH = 10_000


def make_console(stderr: bool = False) -> Console:
    """On a terminal Rich fits tables to its width (long cells fold, never cut); elsewhere
    (a pipe, a file, a CI log) it would assume 80 columns and cut ids with '…'."""
    out = Console(stderr=stderr)
    if not out.is_terminal:
        out.width = UNCUT_WIDTH
    return out


console = make_console()

err_console = make_console(stderr=True)


SpecOption = Annotated[
    Path | None,
    typer.Option("--spec", help="Dataset spec YAML (default: settings' spec_path)."),
]


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")
]


TaskOption = Annotated[
    str | None,
    typer.Option("--task", help="soft_sensor or harvest (default: both)."),
]


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def print_json(data: Any) -> None:
    """JSON on stdout as plain text: no colour, no wrapping, whatever the output is."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def show_rows(
    rows: list[dict[str, Any]],
    columns: dict[str, str],
    *,
    as_json: bool,
    title: str | None = None,
    formats: Mapping[str, Callable[[Any], str]] | None = None,
) -> None:
    """Rows as a table for people (`columns`: key → header) or, with --json, as a JSON array
    for scripts with every key. Cells are plain text: a '[K]' in a header stays as it is."""
    if as_json:
        print_json(rows)
        return
    table = Table(title=title)
    for label in columns.values():
        table.add_column(label, overflow="fold")
    formats = formats or {}
    for row in rows:
        table.add_row(*[Text(formats.get(k, cell)(row.get(k))) for k in columns])
    console.print(table)


@app.callback()
def _main() -> None:
    disable_telemetry()


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def load_spec(path: Path | None) -> DatasetSpec:
    from bioprocessml.spec import load_spec

    return load_spec(path or Settings().spec_path)


def prefect_ready(settings: Settings, wait: float = 0.0) -> None:
    """Point Prefect clients at the configured server and fail if it is not there. Long-lived
    processes (runner, watcher) `wait` for it: a busy server that answers /health slowly (SQLite
    under a burst, a loaded machine) must not make them exit at start."""
    import time

    os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    deadline = time.monotonic() + wait
    while True:
        try:
            urllib.request.urlopen(f"{settings.prefect_api_url}/health", timeout=10).close()
            return
        except (URLError, OSError):
            if time.monotonic() >= deadline:
                raise BioprocessMLError(
                    f"no Prefect server at {settings.prefect_api_url}: start the stack with "
                    "`bioprocessml up`"
                ) from None
            time.sleep(1.0)
