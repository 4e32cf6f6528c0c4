"""Plots people would rather look at than read: batch trajectories by scenario."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME

PANELS = [
    ("titer", "titer [g/L]"),
    ("biomass", "biomass [g/L]"),
    ("feed_rate", "feed [L/h]"),
    ("dissolved_oxygen", "DO [%]"),
    ("ph", "pH"),
    ("temperature", "temperature [°C]"),
]


def plot_trajectories(frames: dict[str, list[pd.DataFrame]], path: Path) -> Path:
    """One panel per variable, one colour per group (e.g. scenario); offline assays as dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 7), sharex=True)
    colours = plt.get_cmap("tab10")
    for g, (group, batches) in enumerate(frames.items()):
        for b, frame in enumerate(batches):
            for ax, (name, label) in zip(axes.flat, PANELS, strict=True):
                series = frame[[TIME, name]].dropna()
                style = {"marker": "o", "ms": 3, "lw": 0.8} if len(series) < 50 else {"lw": 0.7}
                ax.plot(series[TIME], series[name], color=colours(g), alpha=0.6, **style,
                        label=group if b == 0 else None)  # fmt: skip
                ax.set_ylabel(label)
    for ax in axes[-1]:
        ax.set_xlabel("time [h]")
    axes.flat[0].legend(loc="upper left", fontsize=8)
    n = sum(len(b) for b in frames.values())
    ids = sorted({str(f[BATCH_ID].iloc[0]) for b in frames.values() for f in b})
    fig.suptitle(f"{n} batches ({ids[0]} … {ids[-1]})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
