"""The `bioprocessml` command: a thin door onto the same functions the flows call.

User mistakes (bad spec, missing file, wrong option) end in one red line and a non-zero exit,
never a traceback. Heavy libraries are imported inside the commands that need them. Commands are
grouped by what they drive: `data` (files, specs, ingest), `stack` (servers, demo), `models`
(retraining, drift history, rollouts).
"""

from __future__ import annotations

import sys

from rich.markup import escape

from bioprocessml.cli import backtest, data, models, ops, stack  # ops: issue 18
from bioprocessml.cli.app import app, err_console
from bioprocessml.errors import BioprocessMLError

__all__ = ["app", "backtest", "data", "main", "models", "ops", "stack"]


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 1."""
    try:
        app()
    except BioprocessMLError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(1)
