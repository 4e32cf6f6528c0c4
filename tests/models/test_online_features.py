"""Features of a growing history (`models.online`) equal `tabular_features` of the whole history
to the bit, however the rows arrive; candidates answer the same from either."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bioprocessml.dataset import TIME, load_batch
from bioprocessml.settings import PROJECT_ROOT
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec, load_spec
from models.anchored import AssayAnchoredModel
from models.base import TASKS, Prediction
from models.features import FeatureSpec, feature_matrix, make_samples, tabular_features
from models.gp import GPModel
from models.hybrid import HybridModel
from models.online import TabularState, answers_online
from models.pls import PLSModel, pipeline_predict
from tests.devset import dev_files

pytestmark = pytest.mark.unit
FINE = SimConfig(duration_h=16.0, online_interval_min=2.0)  # 16 rows in the recent window


def columns(part: pd.DataFrame, fs: FeatureSpec) -> dict[str, np.ndarray]:
    names = {*fs.online, *fs.cumulative, *fs.integrated, *fs.offline}
    return {n: part[n].to_numpy(dtype=float) for n in names}


def grow(batch: pd.DataFrame, fs: FeatureSpec, cuts: list[int]) -> list[tuple[int, Any]]:
    """Feed the batch in pieces ending at `cuts`; the view after each piece."""
    state, views, start = TabularState(fs), [], 0
    for cut in cuts:
        part = batch.iloc[start:cut]
        state.extend(part[TIME].to_numpy(dtype=float), columns(part, fs))
        views.append((cut, state.view()))
        start = cut
    return views


def assert_same_features(batch: pd.DataFrame, fs: FeatureSpec, cuts: list[int]) -> None:
    for cut, view in grow(batch, fs, cuts):
        history = batch.iloc[:cut]
        for task in TASKS:
            expected = tabular_features(history, fs, task)
            assert np.array_equal(view.features[task], expected, equal_nan=True), (cut, task)
        assays = np.flatnonzero(history[fs.target].notna().to_numpy())
        if len(assays):
            at = history.iloc[: assays[-1] + 1]
            assert view.at_assay.time == at[TIME].iloc[-1]
            expected = tabular_features(at, fs, "soft_sensor")
            assert np.array_equal(view.at_assay.features["soft_sensor"], expected, equal_nan=True)
        else:
            assert view.at_assay is None


@pytest.fixture(scope="module")
def fine_batch(spec: DatasetSpec) -> pd.DataFrame:
    batch = simulate(1, "normal", seed=5, cfg=FINE)[0]
    batch.loc[batch.index[40:55], "offgas_o2"] = np.nan  # a silent probe early on
    batch.loc[batch.index[::7], "feed_rate"] = np.nan
    batch.loc[batch.index[[150, 151, 300]], "titer"] = [0.4, 0.5, 0.9]  # lab assays mid-batch
    return batch


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_split_of_the_rows_gives_the_whole_historys_features(
    fine_batch: pd.DataFrame, spec: DatasetSpec, data: st.DataObject
) -> None:
    n = len(fine_batch)
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=8).map(sorted))
    assert_same_features(fine_batch, FeatureSpec.from_spec(spec), [*dict.fromkeys(cuts), n])


def test_row_by_row_on_a_plant_batch_gives_the_same_features() -> None:
    """IndPenSim: 30 channels, discharges, sparse assays; every 25th row checked."""
    spec = load_spec(PROJECT_ROOT / "data" / "datasets" / "indpensim.yaml")
    batch = load_batch(dev_files("ips-dev-500000")[0], spec).iloc[:400]
    fs = FeatureSpec.from_spec(spec)
    views = grow(batch, fs, list(range(1, len(batch) + 1)))
    for cut, view in views[::25]:
        for task in TASKS:
            expected = tabular_features(batch.iloc[:cut], fs, task)
            assert np.array_equal(view.features[task], expected, equal_nan=True)


def same(a: Prediction, b: Prediction) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(
        (a.mean, a.lower, a.upper), (b.mean, b.lower, b.upper), strict=True)) and a.mode == b.mode  # fmt: skip


def test_candidates_answer_the_same_from_a_view_as_from_the_rows(
    training_batches: list[pd.DataFrame], live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    fs = FeatureSpec.from_spec(spec)
    soft = make_samples(training_batches, fs, "soft_sensor")
    models: list[Any] = [PLSModel(t, fs).fit(make_samples(training_batches, fs, t)) for t in TASKS]
    models.append(AssayAnchoredModel(PLSModel("soft_sensor", fs)).fit(soft))
    models.append(GPModel("soft_sensor", fs, iterations=20).fit(soft))
    batch = live_batches[0]
    for cut, view in grow(batch, fs, [5, 40, 80, 150, len(batch)]):
        history = batch.iloc[:cut]
        for model in models:
            assert answers_online(model)
            assert same(model.predict_online(view), model.predict([history])), (model.name, cut)
    assert not answers_online(HybridModel("soft_sensor", fs))
    assert not answers_online(AssayAnchoredModel(HybridModel("soft_sensor", fs)))


def test_a_view_is_not_changed_by_later_rows(
    live_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    fs = FeatureSpec.from_spec(spec)
    (_, first), (_, second) = grow(live_batches[1], fs, [60, 120])
    again = grow(live_batches[1], fs, [60])[0][1]
    for task in TASKS:
        assert np.array_equal(first.features[task], again.features[task], equal_nan=True)
        assert not np.array_equal(first.features[task], second.features[task], equal_nan=True)


def test_pls_predicts_as_its_scikit_learn_pipeline_does(
    training_batches: list[pd.DataFrame], spec: DatasetSpec
) -> None:
    fs = FeatureSpec.from_spec(spec)
    samples = make_samples(training_batches, fs, "harvest")
    model = PLSModel("harvest", fs).fit(samples)
    x = feature_matrix(samples.histories, fs, "harvest", fill=model.fill_)
    assert np.array_equal(pipeline_predict(model.model_, x), model.model_.predict(x).ravel())
    assert np.array_equal(pipeline_predict(model.model_, x[3:4]), model.model_.predict(x[3:4]))
