"""The CLI's shared ground: the Typer app and its command groups, consoles and helpers."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.error import URLError

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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


TaskOption = Annotated[
    str | None,
    typer.Option("--task", help="soft_sensor or harvest (default: both)."),
]


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


def prefect_ready(settings: Settings) -> None:
    """Point Prefect clients at the configured server and fail early if it is not there."""
    os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    try:
        urllib.request.urlopen(f"{settings.prefect_api_url}/health", timeout=5).close()
    except (URLError, OSError):
        raise BioprocessMLError(
            f"no Prefect server at {settings.prefect_api_url}: start the stack with `bioprocessml up`"
        ) from None
