"""One picture of a backtest: champion error against the naive forecast per batch, with alarms,
retrainings and rollout changes marked, for both tasks."""

from __future__ import annotations

from pathlib import Path

from bioprocessml.backtest.scorecard import BatchScore


def plot_scorecard(batches: list[BatchScore], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    x = [b.order for b in batches]
    series = [
        ("titer now: RMSE on the batch's assays", [b.now_rmse for b in batches],
         [b.now_naive_rmse for b in batches]),
        ("harvest: error of the 50 % forecast", [b.harvest_errors.get("50%") for b in batches],
         [b.harvest_naive_error for b in batches]),
    ]  # fmt: skip
    for ax, (title, model, naive) in zip(axes, series, strict=True):
        ax.plot(x, [v if v is not None else float("nan") for v in model], "o-", label="champion")
        ax.plot(x, [v if v is not None else float("nan") for v in naive], "s--", color="grey",
                label="naive forecast")  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("g/L")
        for b in batches:
            if b.data_drift or b.concept_alarm:
                ax.axvline(b.order, color="tab:red", alpha=0.25, lw=6)
            if b.retrain:
                ax.axvline(b.order, color="tab:green", ls=":", lw=1.5)
            if b.label not in ("normal", ""):
                ax.axvspan(b.order - 0.5, b.order + 0.5, color="tab:orange", alpha=0.08)
        ax.legend(loc="upper left", fontsize=8)
    axes[1].set_xlabel("batch (arrival order); red: drift alarm, green: retraining, "
                       "orange: labelled change")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
