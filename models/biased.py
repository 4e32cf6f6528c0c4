"""A model whose answers are shifted by a fixed bias: a deliberately weak challenger, injected
on purpose by the demo campaign and the tests to show that a rollout rolls it back."""

from __future__ import annotations

import pandas as pd

from models.base import Candidate, Prediction, Samples


class BiasedModel:
    def __init__(self, base: Candidate, bias: float) -> None:
        self.base, self.bias = base, bias
        self.name, self.task = f"{base.name}{bias:+g}", base.task

    def fit(self, samples: Samples) -> BiasedModel:
        return self

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        p = self.base.predict(histories)
        return Prediction(p.mean + self.bias, p.lower + self.bias, p.upper + self.bias)
