"""Evaluation plots logged with every candidate: parity and trajectory with interval band."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.base import Prediction, Samples, Task


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_parity(prediction: Prediction, samples: Samples, title: str, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    y = samples.targets
    ax.errorbar(y, prediction.mean, yerr=[prediction.mean - prediction.lower, prediction.upper - prediction.mean],
                fmt="o", ms=3, alpha=0.6, elinewidth=0.6)  # fmt: skip
    low, high = (
        float(min(y.min(), prediction.lower.min())),
        float(max(y.max(), prediction.upper.max())),
    )
    ax.plot([low, high], [low, high], "k--", lw=0.8)
    ax.set(xlabel="observed", ylabel="predicted (95 % interval)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_trajectories(
    prediction: Prediction, samples: Samples, task: Task, title: str, path: Path, batches: int = 4
) -> Path:
    """Soft sensor: assays and predictions over time. Harvest: forecast over batch fraction
    against the final titer. One colour per held-out batch."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = samples.times if task == "soft_sensor" else samples.fractions * 100
    for i, group in enumerate(list(dict.fromkeys(samples.groups))[:batches]):
        at = samples.groups == group
        colour = f"C{i}"
        ax.fill_between(x[at], prediction.lower[at], prediction.upper[at], color=colour, alpha=0.2)
        ax.plot(x[at], prediction.mean[at], color=colour, label=group)
        if task == "soft_sensor":
            ax.plot(x[at], samples.targets[at], "o", color=colour, ms=4)
        else:
            ax.axhline(float(np.mean(samples.targets[at])), color=colour, ls="--", lw=0.8)
    xlabel = "time [h]" if task == "soft_sensor" else "batch time at forecast [%]"
    ax.set(xlabel=xlabel, ylabel="titer [g/L]", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
