"""What the monitor needs from the registry: the soft-sensor champion, the batches it was
trained and judged on (the drift reference), its validation error and a way to call it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from bioprocessml.settings import Settings
from models.base import FloatArray, Task
from models.registry import CHAMPION, Lineage, alias_version, configure, load_alias
from models.training import histories_frame

TASK: Task = "soft_sensor"


@dataclass
class Champion:
    version: str
    train_batches: list[str]
    holdout_batches: list[str]
    validation_rmse: float
    predict: Callable[[list[pd.DataFrame]], FloatArray]
    interval: Callable[[list[pd.DataFrame]], pd.DataFrame] | None = None  # mean, lower, upper


def load_champion(settings: Settings) -> Champion | None:
    configure(settings)
    version = alias_version(TASK, CHAMPION)
    if version is None:
        return None
    run = MlflowClient().get_run(version.tags["run_id"])
    model = load_alias(TASK, CHAMPION)
    lineage = Lineage.from_tags(version.tags)

    def interval(histories: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.DataFrame(model.predict(histories_frame(histories)))[["mean", "lower", "upper"]]

    def predict(histories: list[pd.DataFrame]) -> FloatArray:
        return np.asarray(interval(histories)["mean"], dtype=float)

    return Champion(
        version=str(version.version),
        train_batches=lineage.train_batches,
        holdout_batches=lineage.holdout_batches,
        validation_rmse=float(
            run.data.metrics.get("holdout_batch_rmse", run.data.metrics["holdout_rmse"])
        ),
        predict=predict,
        interval=interval,
    )


def interval_coverage(champion: Champion, frame: pd.DataFrame, target: str) -> tuple[float, int]:
    """Share of the batch's assays inside the champion's 95 % interval, and how many assays."""
    from monitoring.concept import labelled_points

    points = labelled_points(frame, target)
    if not points or champion.interval is None:
        return float("nan"), 0
    band = champion.interval([h for h, _ in points])
    actual = np.array([y for _, y in points])
    inside = (band["lower"].to_numpy() <= actual) & (actual <= band["upper"].to_numpy())
    return float(inside.mean()), len(actual)
