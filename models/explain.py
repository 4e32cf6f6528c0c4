"""Why a candidate answered what it did: the right SHAP explainer per candidate, and each trained
candidate's global importance (mean |SHAP| over held-out histories) logged to its MLflow run.

* PLS: linear (exact) — `models.explain_tabular`
* GP: model-agnostic permutation SHAP over its features — `models.explain_tabular`
* hybrid (and any model that keeps a reference batch): model-agnostic permutation SHAP over
  whole spec columns — `models.explain_masking`
* LSTM: gradient-based (integrated gradients from the golden batch) — `models.explain_lstm`
* `<base>+assays`: the base's explanation plus the lab correction as one more term;
  a biased (fault-injected) model: the base's explanation plus its bias.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from bioprocessml.spec import DatasetSpec
from models.attribution import Attribution, Explanation, column_attribution

log = logging.getLogger(__name__)
IMPORTANCE_SAMPLES = 24  # held-out histories behind a global importance


def explain(model: Any, history: pd.DataFrame, spec: DatasetSpec) -> Explanation:
    """SHAP values of one answer (`history`: a canonical batch frame up to now)."""
    kind = type(model).__name__
    if kind == "AssayAnchoredModel":
        return _with_offset(
            model,
            history,
            spec,
            "lab titer correction (latest assay − the soft sensor at its time)",
        )
    if kind == "BiasedModel":
        return _with_offset(model, history, spec, f"bias added on purpose ({model.bias:+g})")
    if kind == "PLSModel":
        from models.explain_tabular import explain_pls

        return explain_pls(model, history, spec)
    if kind == "GPModel":
        from models.explain_tabular import explain_gp

        return explain_gp(model, history, spec)
    if kind == "LSTMModel":
        from models.explain_lstm import explain_lstm

        return explain_lstm(model, history, spec)
    from models.explain_masking import explain_masking

    return explain_masking(model, history, spec)


def _with_offset(model: Any, history: pd.DataFrame, spec: DatasetSpec, words: str) -> Explanation:
    """A wrapper's answer = its base's answer + an offset: one more attribution."""
    inner = explain(model.base, history, spec)
    final = float(model.predict([history]).mean[0])
    offset = column_attribution(spec, spec.target, words, final - inner.prediction)
    attributions: list[Attribution] = [*inner.attributions]
    if offset.contribution != 0.0:
        attributions.append(offset)
    attributions.sort(key=lambda a: -abs(a.contribution))
    return inner.model_copy(
        update={
            "model": model.name,
            "prediction": final,
            "attributions": attributions,
            "method": f"{inner.method}; + {words}",
        }
    )


def global_importance(model: Any, histories: list[pd.DataFrame], spec: DatasetSpec) -> pd.DataFrame:
    """Mean |SHAP| per spec column and feature over (at most `IMPORTANCE_SAMPLES`, evenly
    spaced) histories, largest first; columns: column, unit, feature, mean_abs_shap, mean_shap."""
    step = max(1, len(histories) // IMPORTANCE_SAMPLES)
    rows = []
    for history in histories[::step][:IMPORTANCE_SAMPLES]:
        for a in explain(model, history, spec).attributions:
            rows.append(
                {"column": a.column, "unit": a.unit, "feature": a.feature, "shap": a.contribution}
            )
    if not rows:
        return pd.DataFrame(columns=["column", "unit", "feature", "mean_abs_shap", "mean_shap"])
    frame = pd.DataFrame(rows)
    n = len(histories[::step][:IMPORTANCE_SAMPLES])
    table = frame.groupby(["column", "unit", "feature"], as_index=False).agg(
        sum_abs=("shap", lambda s: s.abs().sum()), sum_shap=("shap", "sum")
    )
    table["mean_abs_shap"] = table.pop("sum_abs") / n  # absent from a sample = 0 there
    table["mean_shap"] = table.pop("sum_shap") / n
    return table.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def plot_importance(table: pd.DataFrame, title: str, unit: str, path: Path, top: int = 15) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = table.head(top).iloc[::-1]
    labels = [
        f"{c} [{u}]: {f}" for c, u, f in zip(shown.column, shown.unit, shown.feature, strict=True)
    ]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(shown) + 1.5))
    ax.barh(labels, shown.mean_abs_shap, color="#3b6ea8")
    ax.set_xlabel(f"mean |SHAP value| [{unit}]")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_importance(
    run_id: str, model: Any, histories: list[pd.DataFrame], spec: DatasetSpec, folder: Path
) -> pd.DataFrame:
    """Global importance of a trained candidate as a table and a plot in its MLflow run."""
    from mlflow import MlflowClient

    table = global_importance(model, histories, spec)
    name = f"{model.task}-{model.name}".replace("+", "_")
    csv = folder / f"{name}-importance.csv"
    table.to_csv(csv, index=False)
    unit = spec.variable(spec.target).canonical_unit
    title = f"{model.task} · {model.name}: global importance over {min(len(histories), IMPORTANCE_SAMPLES)} held-out histories"
    png = plot_importance(table, title, unit, folder / f"{name}-importance.png")
    client = MlflowClient()
    for path in (csv, png):
        client.log_artifact(run_id, str(path), artifact_path="explain")
    client.log_table(run_id, table, artifact_file="explain/importance.json")
    return table
