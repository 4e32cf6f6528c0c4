"""Model-agnostic SHAP values over whole spec columns, for models that read trajectories (the
hybrid's integrated mass balance; any candidate that keeps a reference).

The players are the spec's input columns; a column "absent" from a coalition follows the
reference batch instead: the training batches' average trajectory at the same elapsed times,
with the batch's own sampling pattern kept. shap's PermutationExplainer plays that game (exactly
additive: the values add up to prediction − the prediction for the reference batch). The
reference is made at training (`attach_reference`) and pickled with the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.spec import DatasetSpec
from models.attribution import Explanation, column_attribution, explanation
from models.base import FloatArray
from models.features import FeatureSpec

GRID_POINTS = 200
PERMUTATIONS = 10
REFERENCE = "explain_reference_"


def reference_history(batches: list[pd.DataFrame], fs: FeatureSpec) -> pd.DataFrame:
    """The average batch: each online and offline column's mean over batches at elapsed hours
    on a grid (assays interpolated between their samples within each batch)."""
    ends = [float(b[TIME].iloc[-1] - b[TIME].iloc[0]) for b in batches]
    grid = np.linspace(0.0, max(ends), GRID_POINTS)
    columns: dict[str, FloatArray] = {"elapsed_h": grid}
    for name in (*fs.online, *fs.offline):
        curves = []
        for batch in batches:
            elapsed = (batch[TIME] - batch[TIME].iloc[0]).to_numpy(dtype=float)
            values = (
                batch[name].to_numpy(dtype=float) if name in batch else np.full(len(batch), np.nan)
            )
            seen = ~np.isnan(values)
            if seen.sum() >= 1:
                curve = np.interp(grid, elapsed[seen], values[seen], right=np.nan)
                curves.append(curve)
        stack = np.vstack(curves) if curves else np.full((1, len(grid)), np.nan)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(np.where(np.isnan(stack), np.nan, stack), axis=0)
        columns[name] = pd.Series(mean).ffill().bfill().to_numpy(dtype=float)
    return pd.DataFrame(columns)


def attach_reference(candidate: Any, batches: list[pd.DataFrame], fs: FeatureSpec) -> None:
    """Keep the average training batch with the model (and its base, for a wrapper)."""
    reference = reference_history(batches, fs)
    for model in (candidate, getattr(candidate, "base", None)):
        if model is not None:
            setattr(model, REFERENCE, reference)


def players(model: Any) -> list[str]:
    """Input columns of the game: online ones; the assays too for the harvest forecast."""
    fs = model.features
    return [*fs.online, *fs.offline] if model.task == "harvest" else list(fs.online)


def masked(history: pd.DataFrame, reference: pd.DataFrame, absent: list[str]) -> pd.DataFrame:
    """The history with the `absent` columns following the reference (sampling pattern kept)."""
    out = history.copy()
    elapsed = (history[TIME] - history[TIME].iloc[0]).to_numpy(dtype=float)
    for name in absent:
        if name in out:
            values = out[name].to_numpy(dtype=float)
            ref = np.interp(elapsed, reference["elapsed_h"], reference[name])
            out[name] = np.where(np.isnan(values), np.nan, ref)
    return out


def explain_masking(model: Any, history: pd.DataFrame, spec: DatasetSpec) -> Explanation:
    import shap

    reference = getattr(model, REFERENCE, None)
    if reference is None:
        raise ValueError(f"{model.name}: trained without a reference batch; retrain to explain")
    names = players(model)
    batch = str(history[BATCH_ID].iloc[0])

    def predict(coalitions: FloatArray) -> FloatArray:
        histories = [
            masked(
                history, reference, [n for n, on in zip(names, row, strict=True) if not on]
            ).assign(**{BATCH_ID: f"{batch}@{i}"})  # cuts of one batch id share an integral
            for i, row in enumerate(np.asarray(coalitions) > 0.5)
        ]
        return np.asarray(model.predict(histories).mean, dtype=float)

    explainer = shap.PermutationExplainer(
        predict, shap.maskers.Independent(np.zeros((1, len(names))))
    )
    evals = PERMUTATIONS * (2 * len(names) + 1)
    result = explainer(np.ones((1, len(names))), max_evals=evals, batch_size=evals, silent=True)
    phi = np.asarray(result.values, dtype=float).reshape(-1)
    online = set(model.features.online)
    words = {n: "its trajectory so far" if n in online else "its assays so far" for n in names}
    attributions = [
        column_attribution(spec, n, words[n], float(v)) for n, v in zip(names, phi, strict=True)
    ]
    final = float(model.predict([history]).mean[0])
    method = "shap.PermutationExplainer over spec columns (reference: the average training batch)"
    base = float(np.ravel(result.base_values)[0])
    return explanation(spec, model.name, method, base, final, attributions)
