"""Every simulator scenario at a glance: simulate, load through the spec, summarise, plot.

No stack needed: a quick look at the data the campaign and the tests use.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from bioprocessml.dataset import load_batch
from bioprocessml.errors import BatchLoadError
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.simulation.plots import plot_trajectories
from bioprocessml.simulation.simulator import SCENARIOS
from bioprocessml.spec import DatasetSpec

SCENARIO_SEEDS = {name: 100 + i for i, name in enumerate(SCENARIOS)}


def show_scenarios(out: Path, n_normal: int, spec: DatasetSpec, console: Console) -> Path:
    """Simulate each scenario into `out/<scenario>/`, load the files back, tabulate and plot."""
    if out.exists():
        shutil.rmtree(out)
    loaded: dict[str, list[pd.DataFrame]] = {}
    table = Table("scenario", "files", "loaded", f"{spec.target} at harvest (g/L)", "first problem")
    with console.status("simulating and loading batches…"):
        for scenario in SCENARIOS:
            n = n_normal if scenario == "normal" else 3
            paths = write_simulated(
                out / scenario, spec, n, scenario, seed=SCENARIO_SEEDS[scenario]
            )
            frames, problems = [], []
            for path in paths:
                try:
                    frames.append(load_batch(path, spec))
                except BatchLoadError as exc:
                    problems.append(str(exc))
            harvest = [
                f[spec.target].dropna().iloc[-1] for f in frames if f[spec.target].notna().any()
            ]
            mean = (
                f"{sum(harvest) / len(harvest):.2f}" if harvest and scenario != "corrupt" else "-"
            )
            table.add_row(scenario, str(len(paths)), str(len(frames)), mean, (problems or ["-"])[0])
            if scenario != "corrupt":
                loaded[scenario] = frames
    console.print(table)
    plot = plot_trajectories(loaded, out / "trajectories.png")
    console.print(f"batch files: {out}\ntrajectory plot: {plot}")
    return plot
