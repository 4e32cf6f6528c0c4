"""Concept drift: the champion's error on newly labelled batches, accumulated by a CUSUM.

Each batch gives one number, the ratio of the champion's RMSE on that batch's assays to its
validation RMSE (≈ 1 while nothing has changed; see `validation_error`). A one-sided CUSUM of
(ratio - 1 - k) lets a single noisy batch pass but alarms when the error stays high for a few
batches: with k = 0.5 and h = 3, one batch alone must be more than 4.5× worse, a sustained 3×
alarms on the third batch, and ratios at or below 1.5 never add up.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import TIME
from models.evaluate import mean_batch_rmse

Predict = Callable[[list[pd.DataFrame]], np.ndarray]


def labelled_points(frame: pd.DataFrame, target: str) -> list[tuple[pd.DataFrame, float]]:
    """(history up to each assay of `target`, assay value), without the assay at batch start
    (nothing to predict from yet): the same cuts as the soft sensor's training samples."""
    if target not in frame or frame.empty:
        return []
    frame = frame.sort_values(TIME)
    time = frame[TIME].to_numpy(dtype=float)
    assays = frame[[TIME, target]].dropna()
    return [
        (frame[time <= t + 1e-9], float(y))
        for t, y in assays.itertuples(index=False)
        if t > time[0]
    ]


def batch_error(predict: Predict, frame: pd.DataFrame, target: str) -> float | None:
    """RMSE of `predict` on the batch's assays of `target`; None if the batch has none."""
    points = labelled_points(frame, target)
    if not points:
        return None
    predicted = np.asarray(predict([h for h, _ in points]), dtype=float).ravel()
    actual = np.array([y for _, y in points])
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def validation_error(predicted: np.ndarray, actual: np.ndarray, groups: np.ndarray) -> float:
    """The champion's typical batch RMSE on validation batches (mean over batches of each
    batch's RMSE, e.g. from grouped cross-validation): the like-for-like scale for
    `batch_error`, so that the ratio is ≈ 1 for a normal batch. The pooled RMSE over all
    samples is dominated by the worst batches; normal ratios against it sit near 0.7-0.9,
    which makes the CUSUM slower (not wrong)."""
    return mean_batch_rmse(np.ravel(predicted) - np.ravel(actual), np.ravel(groups))


class ConceptState(BaseModel):
    cusum: float = 0.0
    batches: int = 0
    alarm: bool = False


def update_cusum(state: ConceptState, ratio: float, k: float = 0.5, h: float = 3.0) -> ConceptState:
    """One batch more: S = max(0, S + ratio - 1 - k); alarm while S > h. A NaN or infinite
    ratio carries no information and leaves the state as it was."""
    if not np.isfinite(ratio):
        return state
    cusum = max(0.0, state.cusum + ratio - 1.0 - k)
    return ConceptState(cusum=cusum, batches=state.batches + 1, alarm=cusum > h)
