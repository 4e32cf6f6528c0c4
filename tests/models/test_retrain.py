"""The retraining flow end to end: data version → candidates → MLflow runs → registry aliases."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from bioprocessml.ingest.versioning import current_version
from bioprocessml.settings import Settings
from bioprocessml.simulation.simulator import SimConfig
from flows.retrain import retrain
from models.registry import CHALLENGER, CHAMPION, MODEL_NAMES, alias_version, load_alias
from tests.models.conftest import accept_batches


@pytest.mark.usefixtures("prefect_api")
def test_retrain_registers_champions_with_lineage_then_rejects_an_equal_candidate(
    model_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIOPROCESSML_TRAINING__CANDIDATES", '["pls"]')
    # Full-length batches: on 9 tiny ones PLS is no better than the naive forecast, and rightly
    # no model is made champion (see test_gate.py).
    md5 = accept_batches(
        model_settings, 9, seed=3, cfg=SimConfig(duration_h=96, online_interval_min=10)
    )
    first = retrain("bootstrap")
    assert [(o.task, o.decision, o.version) for o in first] == [
        ("soft_sensor", "champion", "1"), ("harvest", "champion", "1"),
    ]  # fmt: skip
    mlflow.set_tracking_uri(model_settings.tracking_uri)
    version = alias_version("soft_sensor", CHAMPION)
    assert version is not None
    tags = version.tags
    assert tags["lineage.data_version"] == md5 == current_version(model_settings.data_dir).md5  # type: ignore[union-attr]
    assert len(tags["lineage.spec_sha256"]) == 64 and tags["lineage.git_commit"]
    assert (
        len(tags["lineage.train_batches"].split(","))
        + len(tags["lineage.holdout_batches"].split(","))
        == 9
    )
    history = pd.read_csv(model_settings.accepted_dir / "N009.csv").head(200)
    output = load_alias("soft_sensor", CHAMPION).predict(history)
    assert list(output.columns) == ["batch_id", "time", "mean", "lower", "upper"]
    assert (output["lower"] <= output["mean"]).all() and (output["mean"] <= output["upper"]).all()
    client = MlflowClient()
    run = client.get_run(tags["run_id"])
    assert run.info.artifact_uri.startswith(
        (model_settings.state_dir / "mlartifacts").resolve().as_uri()
    )
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/soft_sensor-pls-parity.png", "plots/soft_sensor-pls-trajectory.png",
    }  # fmt: skip
    assert run.data.metrics["holdout_rmse"] > 0 and 0 <= run.data.metrics["holdout_coverage"] <= 1

    # Same data, same candidate: it cannot beat the champion by the margin → rejected.
    second = retrain("again")
    assert [o.decision for o in second] == ["rejected", "rejected"]
    assert "does not beat" in second[0].reason
    assert alias_version("soft_sensor", CHALLENGER) is None
    assert len(client.search_model_versions(f"name='{MODEL_NAMES['soft_sensor']}'")) == 1
    parents = client.search_runs(
        [client.get_experiment_by_name(model_settings.experiment).experiment_id],  # type: ignore[union-attr]
        filter_string="tags.reason = 'again'",
    )
    assert parents[0].data.tags["gate.soft_sensor"].startswith("rejected: RMSE")
