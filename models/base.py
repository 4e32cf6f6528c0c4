"""What every candidate model shares: the two prediction tasks, training samples, predictions
with 95 % intervals, and the fit/predict interface the evaluation and the service rely on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

Task = Literal["soft_sensor", "harvest"]
TASKS: tuple[Task, ...] = ("soft_sensor", "harvest")
Z95 = 1.959963984540054
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Prediction:
    """One prediction per history: mean and a central 95 % interval; `mode` (if the model has
    modes) says per history which one answered, e.g. "assays" or "online"."""

    mean: FloatArray
    lower: FloatArray
    upper: FloatArray
    mode: tuple[str, ...] | None = None

    @classmethod
    def gaussian(cls, mean: FloatArray, std: FloatArray) -> Prediction:
        return cls(mean, mean - Z95 * std, mean + Z95 * std)

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({"mean": self.mean, "lower": self.lower, "upper": self.upper})
        if self.mode is not None:
            frame["mode"] = list(self.mode)
        return frame


@dataclass
class Samples:
    """Training or test samples: each is a batch history cut at `times[i]` and its target.

    Soft sensor: cut at each offline assay of the target, target = the assay (titer now).
    Harvest: cut at fractions of the batch, target = the last assay of the batch (titer at harvest).
    """

    histories: list[pd.DataFrame]
    targets: FloatArray
    groups: npt.NDArray[np.str_]
    times: FloatArray
    fractions: FloatArray

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, mask: npt.NDArray[np.bool_]) -> Samples:
        index = np.flatnonzero(mask)
        return Samples(
            [self.histories[i] for i in index], self.targets[index], self.groups[index],
            self.times[index], self.fractions[index],
        )  # fmt: skip


class Candidate(Protocol):
    """A model of one task. `fit` sees whole batches only through `Samples`; `predict` takes
    histories (canonical frames up to the prediction time) and returns one prediction each."""

    name: str
    task: Task

    def fit(self, samples: Samples) -> Candidate: ...

    def predict(self, histories: list[pd.DataFrame]) -> Prediction: ...
