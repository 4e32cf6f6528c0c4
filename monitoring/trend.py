"""The drift history as a picture: drift share and champion error per batch, alarms marked."""

from __future__ import annotations

from pathlib import Path

from monitoring.history import DriftRecord


def plot_history(
    records: list[DriftRecord], path: Path, drift_share: float, cusum_h: float
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = list(range(len(records)))
    labels = [r.batch_id for r in records]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, len(x) * 0.35), 6), sharex=True)
    top.bar(x, [r.drift_share for r in records], color="C0", label="window drift share")
    top.axhline(drift_share, color="C0", ls="--", lw=0.8, label="dataset-drift threshold")
    for i, r in enumerate(records):
        if r.data_drift:
            top.annotate(",".join(r.drifted_columns)[:24] or "drift", (i, r.drift_share), rotation=60,
                         fontsize=7, color="C3", xytext=(0, 4), textcoords="offset points")  # fmt: skip
    top.set_ylabel("drift share")
    top.legend(fontsize=8, loc="upper left")
    ratio = [r.error_ratio if r.error_ratio is not None else float("nan") for r in records]
    bottom.plot(x, ratio, "o-", color="C1", label="champion error / validation RMSE")
    bottom.plot(x, [r.cusum for r in records], "s-", color="C2", ms=3, label="CUSUM")
    bottom.axhline(cusum_h, color="C2", ls="--", lw=0.8, label="CUSUM alarm level")
    for i, r in enumerate(records):
        if r.requested:
            for ax in (top, bottom):
                ax.axvline(i, color="C3", alpha=0.4, lw=2)
    bottom.set_ylabel("error ratio / CUSUM")
    bottom.set_xticks(x, labels, rotation=90, fontsize=7)
    bottom.legend(fontsize=8, loc="upper left")
    fig.suptitle("Drift history (red lines: retraining requested)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
