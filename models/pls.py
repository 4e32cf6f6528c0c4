"""PLS regression: the industry's classic soft-sensor baseline.

The number of components is chosen by grouped (batch-wise) cross-validation, and the 95 %
interval comes from the out-of-fold residuals of that same cross-validation (calibrated over
held-out batches and by elapsed time, `models.calibration`), so both reflect error on unseen
batches rather than on the rows the model was fitted to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from models.base import FloatArray, Prediction, Samples, Task
from models.calibration import IntervalCalibration, elapsed_hours
from models.features import FeatureSpec, feature_matrix, fill_missing, tabular_features
from models.online import FeatureView


def _pipeline(components: int) -> Pipeline:
    return make_pipeline(StandardScaler(), PLSRegression(n_components=components, scale=False))


def out_of_fold(
    x: FloatArray, y: FloatArray, groups: np.ndarray, components: int, folds: int
) -> FloatArray:
    """Predictions for each sample from a model that never saw its batch."""
    predicted = np.empty_like(y)
    for train, test in GroupKFold(n_splits=folds).split(x, y, groups):
        model = _pipeline(components).fit(x[train], y[train])
        predicted[test] = model.predict(x[test]).ravel()
    return predicted


class PLSModel:
    name = "pls"

    def __init__(self, task: Task, features: FeatureSpec, max_components: int = 15) -> None:
        self.task = task
        self.features = features
        self.max_components = max_components
        self.params_: dict[str, Any] = {}

    def fit(self, samples: Samples) -> PLSModel:
        x = feature_matrix(samples.histories, self.features, self.task)
        self.fill_ = x.mean(axis=0)
        y = samples.targets
        folds = min(5, len(np.unique(samples.groups)))
        if folds < 2:
            raise ValueError("PLS needs at least two batches to choose its components")
        smallest_fold = min(
            len(train) for train, _ in GroupKFold(n_splits=folds).split(x, y, samples.groups)
        )
        best: tuple[float, int, FloatArray] | None = None
        for k in range(1, min(self.max_components, x.shape[1], smallest_fold - 1) + 1):
            oof = out_of_fold(x, y, samples.groups, k, folds)
            rmse = float(np.sqrt(np.mean((oof - y) ** 2)))
            if best is None or rmse < best[0] * 0.995:  # prefer fewer components on a near tie
                best = (rmse, k, oof)
        assert best is not None
        rmse, self.components_, self.oof_ = best
        self.calibration_ = IntervalCalibration.fit(
            y - self.oof_, elapsed_hours(samples.histories), samples.groups
        )
        self.model_ = _pipeline(self.components_).fit(x, y)
        self.params_ = {
            "components": self.components_, "cv_rmse": rmse, "folds": folds,
            "calibration_factor": self.calibration_.factor,
        }  # fmt: skip
        return self

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        raw = np.vstack([tabular_features(h, self.features, self.task) for h in histories])
        return self._predict(raw, elapsed_hours(histories))

    def predict_online(self, view: FeatureView) -> Prediction:
        """The same answer as `predict` of the history the view was made of."""
        return self._predict(view.features[self.task][None, :], np.array([view.elapsed]))

    def _predict(self, raw: FloatArray, elapsed: FloatArray) -> Prediction:
        mean = pipeline_predict(self.model_, fill_missing(raw, self.fill_))
        return self.calibration_.interval(mean, elapsed)


def pipeline_predict(pipeline: Pipeline, x: FloatArray) -> FloatArray:
    """`pipeline.predict(x).ravel()` without scikit-learn's input checks (~0.35 ms a call, 25
    times the arithmetic; the service predicts one row per update): the same operations in
    the same order, so the same numbers."""
    scaler, pls = pipeline[0], pipeline[1]
    z = np.array(x, dtype=float)
    z -= scaler.mean_
    z /= scaler.scale_
    z -= pls._x_mean
    return np.asarray(z @ pls.coef_.T + pls.intercept_, dtype=float).ravel()
