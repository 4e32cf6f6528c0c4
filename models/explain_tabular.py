"""SHAP values of the tabular candidates, over the features of `models.features`.

PLS is affine in its features, so shap's LinearExplainer gives exact SHAP values against the
training means (the model keeps them to fill missing values). The GP is not: shap's
PermutationExplainer (model-agnostic, exactly additive by construction) asks the GP about the
feature vector with features switched to the training means. A feature the GP does not use
(`models.gp.state_features` drops instantaneous readings) gets exactly zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bioprocessml.spec import DatasetSpec
from models.attribution import Explanation, explanation, feature_attribution, floor_attribution
from models.base import FloatArray
from models.features import feature_matrix

PERMUTATIONS = 10  # antithetic permutation pairs of the PermutationExplainer


def _features(model: Any, history: pd.DataFrame) -> tuple[FloatArray, list[str]]:
    names = model.features.names(model.task)
    return feature_matrix([history], model.features, model.task, fill=model.fill_), names


def explain_pls(model: Any, history: pd.DataFrame, spec: DatasetSpec) -> Explanation:
    """Exact SHAP values of the PLS pipeline (scaler + PLS: affine in the features)."""
    import shap

    x, names = _features(model, history)
    background = np.asarray(model.fill_, dtype=float)[None, :]
    intercept = float(np.ravel(model.model_.predict(np.zeros_like(background)))[0])
    coef = np.ravel(model.model_.predict(np.eye(x.shape[1]))) - intercept
    explainer = shap.LinearExplainer((coef, intercept), shap.maskers.Independent(background))
    phi = np.asarray(explainer.shap_values(x), dtype=float).reshape(-1)
    base = float(np.ravel(explainer.expected_value)[0])
    raw = float(np.ravel(model.model_.predict(x))[0])
    final = float(model.predict([history]).mean[0])
    return _explained(
        spec,
        model.name,
        "shap.LinearExplainer (exact, affine model)",
        base,
        (raw, final),
        phi,
        names,
        x[0],
    )


def explain_gp(model: Any, history: pd.DataFrame, spec: DatasetSpec) -> Explanation:
    """Model-agnostic SHAP values of the GP's predictive mean (as served: floored at zero)."""
    import shap

    from models.gp import VOLUME, state_features

    x, names = _features(model, history)
    volume = VOLUME in model.features.online

    def mean(matrix: FloatArray) -> FloatArray:
        inputs, _ = state_features(np.asarray(matrix, dtype=float), names, volume)
        return model.predict_matrix(inputs, inputs[:, 0], lower_bound=0.0).mean

    background = np.asarray(model.fill_, dtype=float)[None, :]
    explainer = shap.PermutationExplainer(mean, shap.maskers.Independent(background))
    evals = PERMUTATIONS * (2 * x.shape[1] + 1)
    result = explainer(x, max_evals=evals, batch_size=evals, silent=True)
    phi = np.asarray(result.values, dtype=float).reshape(-1)
    base = float(np.ravel(result.base_values)[0])
    final = float(model.predict([history]).mean[0])
    return _explained(
        spec,
        model.name,
        "shap.PermutationExplainer (model-agnostic)",
        base,
        (final, final),
        phi,
        names,
        x[0],
    )


def _explained(
    spec: DatasetSpec,
    model: str,
    method: str,
    base: float,
    answers: tuple[float, float],
    phi: FloatArray,
    names: list[str],
    values: FloatArray,
) -> Explanation:
    """Attributions per feature. `answers`: the model's raw output and the served answer; when
    the served one was clipped at zero, a floor term says by how much."""
    raw, final = answers
    attributions = [
        feature_attribution(spec, name, float(v), float(values[j]))
        for j, (name, v) in enumerate(zip(names, phi, strict=True))
    ]
    if final != raw:
        attributions.append(floor_attribution(spec, final - raw))
    return explanation(spec, model, method, base, final, attributions)
