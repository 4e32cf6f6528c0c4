"""Is each live champion still better than doing nothing? Its error on a finished batch beside
the naive forecast's (what its own training batches say without looking at this batch).

Soft sensor: RMSE on the batch's titer assays. Harvest forecast: mean absolute error of the
final titer forecast made at 25/50/75 % of the batch. A champion whose mean error over its last
few live batches is above the naive forecast's raises an alarm for its task: retrain, and at the
gate it must beat the naive forecast on batches it has not seen, or it retires.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import TIME
from bioprocessml.ingest.accepted import read_accepted
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from models.features import FeatureSpec, make_samples
from models.naive import NaiveModel
from models.registry import CHAMPION, Lineage, alias_version, load_alias
from models.training import histories_frame
from monitoring.concept import batch_error

CUTS = (0.25, 0.5, 0.75)


class LiveScore(BaseModel):
    """One task's champion and naive forecast errors on one finished batch."""

    task: Task
    version: str
    error: float
    naive: float


def naive_model(
    settings: Settings, batch_ids: list[str], spec: DatasetSpec, task: Task
) -> NaiveModel | None:
    frames = []
    for batch_id in batch_ids:
        try:
            frames.append(read_accepted(settings, batch_id))
        except FileNotFoundError:
            continue
    try:
        return NaiveModel(task).fit(make_samples(frames, FeatureSpec.from_spec(spec), task))
    except ValueError:
        return None


def soft_sensor_score(
    settings: Settings, version: str, train: list[str], predict_error: float,
    frame: pd.DataFrame, spec: DatasetSpec,
) -> LiveScore | None:  # fmt: skip
    naive = naive_model(settings, train, spec, "soft_sensor")
    if naive is None:
        return None
    error = batch_error(lambda histories: naive.predict(histories).mean, frame, spec.target)
    if error is None:
        return None
    return LiveScore(task="soft_sensor", version=version, error=predict_error, naive=error)


def harvest_score(settings: Settings, frame: pd.DataFrame, spec: DatasetSpec) -> LiveScore | None:
    """The harvest champion's forecasts at 25/50/75 % of this batch against its final assay."""
    version = alias_version("harvest", CHAMPION)
    assays = frame[[TIME, spec.target]].dropna()
    if version is None or assays.empty:
        return None
    naive = naive_model(settings, Lineage.from_tags(version.tags).train_batches, spec, "harvest")
    if naive is None:
        return None
    start, end = float(frame[TIME].iloc[0]), float(frame[TIME].iloc[-1])
    cuts = [frame[frame[TIME] <= start + f * (end - start) + 1e-9] for f in CUTS]
    output = pd.DataFrame(load_alias("harvest", CHAMPION).predict(histories_frame(cuts)))
    final = float(assays[spec.target].iloc[-1])
    error = float(np.mean(np.abs(output["mean"].to_numpy(float) - final)))
    naive_error = float(np.mean(np.abs(naive.predict(cuts).mean - final)))
    return LiveScore(task="harvest", version=str(version.version), error=error, naive=naive_error)


def worse_than_naive(scores: list[LiveScore], window: int) -> tuple[float, float] | None:
    """Mean errors (champion, naive) over the last `window` scores of the newest score's
    champion, when the champion's is the higher."""
    if not scores:
        return None
    mine = [s for s in scores if s.version == scores[-1].version][-window:]
    if len(mine) < window:
        return None
    model, naive = float(np.mean([s.error for s in mine])), float(np.mean([s.naive for s in mine]))
    return (model, naive) if model > naive else None
