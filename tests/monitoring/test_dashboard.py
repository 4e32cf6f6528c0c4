"""The Evidently monitoring project: every batch the monitor checks adds one snapshot, with the
champion's error and interval coverage on the batch's assays once there is a champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bioprocessml.dataset import BATCH_ID
from bioprocessml.ingest.catalogue import Catalogue, Entry
from bioprocessml.settings import Settings
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import DatasetSpec
from models.features import FeatureSpec, make_samples
from models.pls import PLSModel
from models.registry import CHAMPION, Lineage, configure, log_candidate, register, set_alias
from tests.conftest import TINY

pytestmark = pytest.mark.model


def accept(settings: Settings, batches: list[pd.DataFrame]) -> list[str]:
    settings.prepare()
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    ids = []
    for frame in batches:
        batch_id = str(frame[BATCH_ID].iloc[0])
        frame.to_csv(settings.accepted_dir / f"{batch_id}.csv", index=False)
        catalogue.add(
            Entry(
                file=f"{batch_id}.csv",
                sha256=batch_id.ljust(64, "0"),
                size=1,
                verdict="accepted",
                batch_id=batch_id,
            )
        )
        ids.append(batch_id)
    return ids


def make_champion(settings: Settings, batches: list[pd.DataFrame], spec: DatasetSpec) -> None:
    fs = FeatureSpec.from_spec(spec)
    model = PLSModel("soft_sensor", fs).fit(make_samples(batches, fs, "soft_sensor"))
    lineage = Lineage(
        data_version="test",
        git_commit="test",
        spec_sha256=spec.sha256,
        train_batches=[str(b[BATCH_ID].iloc[0]) for b in batches],
        holdout_batches=[],
    )
    experiment = configure(settings)
    run_id, uri = log_candidate(model, {"rmse": 0.2}, lineage, batches[0].head(12), [], experiment)
    set_alias("soft_sensor", CHAMPION, register(uri, "soft_sensor", lineage, run_id))


def test_every_checked_batch_adds_a_snapshot_with_error_and_coverage(
    tmp_path: Path, spec: DatasetSpec
) -> None:
    from monitoring.dashboard import open_project, snapshot_batches
    from monitoring.monitor import monitor_batch

    settings = Settings(
        state_dir=tmp_path / "state", data_dir=tmp_path / "data", reports_dir=tmp_path / "reports"
    )
    batches = simulate(9, "normal", seed=41, cfg=TINY)
    ids = accept(settings, batches)
    before = [monitor_batch(settings, b) for b in ids[:2]]  # no champion yet
    make_champion(settings, batches[:6], spec)
    after = [monitor_batch(settings, b) for b in ids[6:]]
    assert sorted(snapshot_batches(settings)) == sorted(ids[:2] + ids[6:])
    assert all(r.coverage is None and r.batch_rmse is None for r in before)
    for record in after:
        assert record.batch_rmse is not None and record.coverage_points >= 3
        assert record.coverage is not None and 0.0 <= record.coverage <= 1.0
    workspace, project = open_project(settings)
    values = {}
    for snapshot_id in workspace.list_runs(project.id):
        model = workspace.get_run(project.id, snapshot_id)
        assert model is not None
        values[model.metadata["batch_id"]] = {
            r.metric_value_location.metric.params["column"]: r.value
            for r in model.metric_results.values()
        }
    assert "coverage" not in values[ids[0]] and values[ids[0]]["checked"] == 1.0
    assert values[ids[7]]["coverage"] == pytest.approx(after[1].coverage)
    assert values[ids[7]]["champion_rmse"] == pytest.approx(after[1].batch_rmse)
    assert len(workspace.get_dashboard(project.id).panels) >= 6
