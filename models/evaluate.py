"""Batch-wise evaluation: whole batches are held out, never rows of a batch.

Metrics: RMSE, MAE, R², 95 %-interval coverage, and the naive forecast's RMSE on the same
samples (`models/naive.py`: what past batches say without looking at this one); for the harvest
forecast also the error at 25/50/75 % of batch time next to the naive one, because early in a
batch the naive forecast is hard to beat.
"""

from __future__ import annotations

import numpy as np

from models.base import FloatArray, Prediction, Samples, Task

CHECKPOINTS = (0.25, 0.5, 0.75)


def split_batches(
    batch_ids: list[str],
    holdout_fraction: float,
    strategy: str = "newest",
    trained_on: frozenset[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    """Whole batches (ids given oldest first) for training and for holding out.

    `newest`: hold out the newest batches: a model is judged on what came after what it learned
    from. `spread`: hold out batches evenly spread over arrival order, the newest included, so
    that after a process change the new regime is in both sets; with `newest` a retrained
    model could not learn it until the new batches outnumber the held-out share.
    `trained_on`: batches a model we compare against (the champion) was trained on; they are
    never held out, so challenger and champion are judged on batches neither has seen."""
    n = len(batch_ids)
    n_test = max(2, round(n * holdout_fraction))
    eligible = [i for i, b in enumerate(batch_ids) if b not in trained_on]
    n_test = min(n_test, len(eligible))
    if n_test < 2 or n - n_test < 2:
        raise ValueError(
            f"need at least 2 batches to train and 2 to hold out that the champion was not "
            f"trained on; got {n} batches, {len(eligible)} of them unseen by the champion"
        )
    if strategy == "newest":
        held = set(eligible[-n_test:])
    else:
        m = len(eligible)
        held = {eligible[round(m - 1 - j * m / n_test)] for j in range(n_test)}
    return (
        [b for i, b in enumerate(batch_ids) if i not in held],
        [b for i, b in enumerate(batch_ids) if i in held],
    )


def rmse(error: FloatArray) -> float:
    return float(np.sqrt(np.mean(error**2))) if len(error) else float("nan")


def mean_batch_rmse(error: FloatArray, groups: np.ndarray) -> float:
    """Mean over batches of each batch's RMSE: the like-for-like scale for one new batch's
    error (a pooled RMSE is dominated by the worst batches)."""
    return float(np.mean([rmse(error[groups == g]) for g in np.unique(groups)]))


def score(
    prediction: Prediction, samples: Samples, task: Task, naive: Prediction | None = None
) -> dict[str, float]:
    """Metrics of one model on held-out samples (see module docstring); with the naive
    forecast's prediction on the same samples, its RMSE beside the model's."""
    y = samples.targets
    error = prediction.mean - y
    covered = (y >= prediction.lower) & (y <= prediction.upper)
    spread = float(np.sum((y - y.mean()) ** 2))
    metrics = {
        "rmse": rmse(error),
        "batch_rmse": mean_batch_rmse(error, samples.groups),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else float("nan"),
        "coverage": float(np.mean(covered)),
        "interval_width": float(np.mean(prediction.upper - prediction.lower)),
        "n": float(len(y)),
    }
    if naive is not None:
        metrics["naive_rmse"] = rmse(naive.mean - y)
    if task == "harvest":
        for point in CHECKPOINTS:
            at = np.isclose(samples.fractions, point)
            metrics[f"rmse_at_{int(point * 100)}"] = rmse(error[at])
            if naive is not None:
                metrics[f"naive_rmse_at_{int(point * 100)}"] = rmse(naive.mean[at] - y[at])
    return metrics
