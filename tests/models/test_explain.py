"""Explanations of every candidate: SHAP values that add up, with the base value, to the answer
the model gives, named by the dataset spec's columns and units; and the global importance a
trained candidate logs to its MLflow run."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bioprocessml.dataset import TIME
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import DatasetSpec
from models.anchored import AssayAnchoredModel
from models.base import Task
from models.biased import BiasedModel
from models.explain import explain, global_importance, log_importance
from models.explain_masking import attach_reference
from models.features import FeatureSpec, make_samples
from models.gp import GPModel
from models.hybrid import HybridModel
from models.lstm import LSTMModel
from models.pls import PLSModel
from tests.conftest import TINY

TOLERANCE = 1e-6  # exact explainers (linear, permutation): floating-point only
IG_TOLERANCE = 0.01  # integrated gradients: quadrature error, as a share of |answer - base|


@pytest.fixture(scope="module")
def batches() -> list[pd.DataFrame]:
    return simulate(10, "normal", seed=31, cfg=TINY)


def fitted(name: str, task: Task, batches: list[pd.DataFrame], spec: DatasetSpec) -> Any:
    fs = FeatureSpec.from_spec(spec)
    build = {
        "pls": lambda: PLSModel(task, fs),
        "gp": lambda: GPModel(task, fs, iterations=40),
        "lstm": lambda: LSTMModel(task, fs, hidden=8, epochs=30, ensemble=2),
        "hybrid": lambda: HybridModel(task, fs, steps=25),
    }
    model = build[name.removesuffix("+assays")]()
    if name.endswith("+assays"):
        model = AssayAnchoredModel(model)
    model.fit(make_samples(batches[:8], fs, task))
    attach_reference(model, batches[:8], fs)
    return pickle.loads(pickle.dumps(model))  # as the registry stores and serves it


def cuts(batch: pd.DataFrame) -> list[pd.DataFrame]:
    elapsed = batch[TIME] - batch[TIME].iloc[0]
    return [batch[elapsed <= f * elapsed.iloc[-1]] for f in (0.3, 0.6, 1.0)]


CASES = [
    ("pls", "soft_sensor"), ("pls", "harvest"), ("gp", "soft_sensor"), ("gp", "harvest"),
    ("lstm", "soft_sensor"), ("lstm", "harvest"), ("hybrid", "soft_sensor"),
    ("hybrid", "harvest"), ("pls+assays", "soft_sensor"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "task"), CASES)
def test_attributions_add_up_to_the_answer_and_name_spec_columns(
    name: str, task: Task, batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    model = fitted(name, task, batches, spec)
    units = {v.column: v.unit for v in spec.variables} | {spec.time.column: spec.time.unit}
    for history in cuts(batches[9]):
        answer = float(model.predict([history]).mean[0])
        e = explain(model, history, spec)
        assert e.prediction == pytest.approx(answer, abs=1e-9)
        total = e.base_value + sum(a.contribution for a in e.attributions)
        scale = abs(answer - e.base_value) if name == "lstm" else 1.0
        limit = IG_TOLERANCE * scale + 1e-6 if name == "lstm" else TOLERANCE
        assert abs(total - answer) <= limit, (name, task, total, answer, e.method)
        assert e.attributions, "an answer away from the reference has causes"
        for a in e.attributions:
            assert a.column in units and a.unit == units[a.column], a
        assert e.unit == "g/L" and e.target == "titer_gL"


def test_wrappers_add_their_offset_as_one_more_term(
    batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    base = fitted("pls", "soft_sensor", batches, spec)
    weak = BiasedModel(base, 1.5)
    history = cuts(batches[9])[1]
    e = explain(weak, history, spec)
    bias = [a for a in e.attributions if "bias" in a.feature]
    assert len(bias) == 1 and bias[0].contribution == pytest.approx(1.5)
    assert e.base_value + sum(a.contribution for a in e.attributions) == pytest.approx(
        float(weak.predict([history]).mean[0])
    )


def test_pls_attribution_is_exact_and_zero_for_an_average_feature(
    batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    """Against the training means, a linear model's SHAP value is coefficient × deviation:
    moving one input changes only its own attribution, by the prediction's change."""
    model = fitted("pls", "soft_sensor", batches, spec)
    history = cuts(batches[9])[1].copy()
    before = {
        a.column + a.feature: a.contribution for a in explain(model, history, spec).attributions
    }
    history.loc[history.index[-1], "ph"] = history["ph"].iloc[-1] + 0.3
    after_e = explain(model, history, spec)
    after = {a.column + a.feature: a.contribution for a in after_e.attributions}
    changed = {
        k
        for k in before.keys() | after.keys()
        if before.get(k, 0) != pytest.approx(after.get(k, 0))
    }
    assert changed == {"pH" + "mean of the last 0.5 h"}


def test_global_importance_is_logged_to_the_candidates_run(
    batches: list[pd.DataFrame], spec: DatasetSpec, tmp_path: Path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    model = fitted("gp", "soft_sensor", batches, spec)
    histories = make_samples(batches[8:], FeatureSpec.from_spec(spec), "soft_sensor").histories
    table = global_importance(model, histories, spec)
    assert list(table.columns) == ["column", "unit", "feature", "mean_abs_shap", "mean_shap"]
    assert (np.diff(table.mean_abs_shap) <= 0).all() and table.mean_abs_shap.iloc[0] > 0
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = MlflowClient().create_run(
        MlflowClient().create_experiment("x", (tmp_path / "a").as_uri())
    )
    log_importance(run.info.run_id, model, histories, spec, tmp_path)
    files = {f.path for f in MlflowClient().list_artifacts(run.info.run_id, "explain")}
    assert {"explain/soft_sensor-gp-importance.csv", "explain/soft_sensor-gp-importance.png",
            "explain/importance.json"} <= files  # fmt: skip
