"""LSTM trajectory model: harvest forecast against the naive baseline, interval coverage on
held-out batches, no leakage of offline assays into the soft sensor, pickling, determinism."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch

from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import DatasetSpec
from models.base import Samples
from models.features import FeatureSpec, make_samples
from models.lstm import LSTMModel, as_ensemble

SEED = 2  # simulator seed: 30 normal batches, the first 20 train, the last 10 are held out


@pytest.fixture(scope="module")
def features(spec: DatasetSpec) -> FeatureSpec:
    return FeatureSpec.from_spec(spec)


@pytest.fixture(scope="module")
def batches() -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    frames = simulate(30, "normal", seed=SEED)
    return frames[:20], frames[20:]


@pytest.fixture(scope="module")
def harvest(
    batches: tuple[list[pd.DataFrame], list[pd.DataFrame]], features: FeatureSpec
) -> tuple[LSTMModel, Samples, Samples]:
    train = make_samples(batches[0], features, "harvest")
    held = make_samples(batches[1], features, "harvest")
    return LSTMModel("harvest", features, seed=0).fit(train), train, held


@pytest.fixture(scope="module")
def soft_sensor(
    batches: tuple[list[pd.DataFrame], list[pd.DataFrame]], features: FeatureSpec
) -> tuple[LSTMModel, Samples]:
    train = make_samples(batches[0], features, "soft_sensor")
    held = make_samples(batches[1], features, "soft_sensor")
    return LSTMModel("soft_sensor", features, seed=0).fit(train), held


def _rmse(truth: np.ndarray, predicted: np.ndarray | float) -> float:
    return float(np.sqrt(np.mean((truth - predicted) ** 2)))


def test_harvest_forecast_beats_the_mean_of_past_batches_at_half_time(
    harvest: tuple[LSTMModel, Samples, Samples], record_property: Callable[[str, object], None]
) -> None:
    model, train, held = harvest
    finals = [train.targets[train.groups == g][0] for g in np.unique(train.groups)]
    naive = float(np.mean(finals))
    predicted = model.predict(held.histories).mean
    rmse = {}
    for fraction in (0.25, 0.5, 0.75):
        at = np.isclose(held.fractions, fraction)
        assert at.sum() == 10  # one cut per held-out batch
        rmse[fraction] = (_rmse(held.targets[at], predicted[at]), _rmse(held.targets[at], naive))
        record_property(f"rmse_lstm_vs_naive_at_{fraction}", rmse[fraction])
    print(f"harvest RMSE (lstm, naive) by fraction of batch time: {rmse}")
    assert rmse[0.5][0] < rmse[0.5][1]
    assert model.params_["train_seconds"] < 60


def test_harvest_intervals_cover_held_out_batches(
    harvest: tuple[LSTMModel, Samples, Samples], record_property: Callable[[str, object], None]
) -> None:
    model, _, held = harvest
    prediction = model.predict(held.histories)
    inside = (held.targets >= prediction.lower) & (held.targets <= prediction.upper)
    record_property("coverage_95", float(inside.mean()))
    print(f"harvest 95 % interval coverage on held-out samples: {inside.mean():.3f}")
    assert 0.8 <= inside.mean() <= 1.0
    width = prediction.upper - prediction.lower
    early, late = held.fractions <= 0.3, held.fractions >= 0.9
    assert np.all(width > 0)
    assert width[early].mean() > width[late].mean()  # forecasts get surer as the batch runs


def test_harvest_forecast_uses_the_assays_so_far(
    harvest: tuple[LSTMModel, Samples, Samples],
) -> None:
    model, _, held = harvest
    history = held.histories[int(np.flatnonzero(np.isclose(held.fractions, 0.5))[0])]
    changed = history.assign(titer=history["titer"] * 1.3)
    before, after = model.predict([history, changed]).mean
    assert after > before


def test_soft_sensor_predicts_finite_values_for_each_history(
    soft_sensor: tuple[LSTMModel, Samples],
) -> None:
    model, held = soft_sensor
    prediction = model.predict(held.histories)
    for values in (prediction.mean, prediction.lower, prediction.upper):
        assert values.shape == (len(held),)
        assert np.all(np.isfinite(values))
    assert np.all(prediction.lower < prediction.mean)
    assert np.all(prediction.mean < prediction.upper)


def test_soft_sensor_does_not_see_offline_assays(
    soft_sensor: tuple[LSTMModel, Samples], features: FeatureSpec
) -> None:
    model, held = soft_sensor
    histories = held.histories[:6]
    altered = []
    for history in histories:
        offline = history[list(features.offline)]
        altered.append(history.assign(**{n: offline[n].fillna(1.0) * 7.0 for n in offline}))
    original, changed = model.predict(histories), model.predict(altered)
    np.testing.assert_array_equal(original.mean, changed.mean)
    np.testing.assert_array_equal(original.upper, changed.upper)


def test_pickle_round_trip_gives_identical_predictions(
    harvest: tuple[LSTMModel, Samples, Samples],
) -> None:
    model, _, held = harvest
    expected = model.predict(held.histories[:25]).frame()
    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(restored.predict(held.histories[:25]).frame(), expected)
    cloudpickle = pytest.importorskip("cloudpickle")  # what MLflow's pyfunc wrapper uses
    restored = cloudpickle.loads(cloudpickle.dumps(model))
    pd.testing.assert_frame_equal(restored.predict(held.histories[:25]).frame(), expected)


def test_same_seed_gives_same_predictions(
    batches: tuple[list[pd.DataFrame], list[pd.DataFrame]], features: FeatureSpec
) -> None:
    train = make_samples(batches[0][:6], features, "harvest")
    histories = make_samples(batches[1][:2], features, "harvest").histories
    rng_state, threads = torch.random.get_rng_state(), torch.get_num_threads()

    def fit(seed: int) -> np.ndarray:
        model = LSTMModel("harvest", features, seed=seed, epochs=20, ensemble=2)
        return model.fit(train).predict(histories).frame().to_numpy()

    first, again, other = fit(3), fit(3), fit(4)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # members use their own seeds
    assert torch.get_num_threads() == threads


def test_predict_before_fit_is_an_error(features: FeatureSpec) -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        LSTMModel("harvest", features).predict([])


def test_mean_titer_curve_follows_the_slope_before_the_first_assay() -> None:
    """Assays from 12 h on of a titer rising linearly from zero: before the first assay the
    curve continues the line to ~0 at the batch start (the kernel mean alone said the titer at
    ~12 h); inside the assays' range it is the kernel mean, as before."""
    from models.trajectories import _mean_curve, _smooth

    x = np.arange(12.0, 97.0, 12.0)
    grid = np.arange(0.0, 110.0)
    curve, kernel = _mean_curve(x, 0.05 * x, grid, 5.0), _smooth(x, 0.05 * x, grid, 5.0)
    np.testing.assert_allclose(curve[:11], 0.05 * grid[:11], atol=0.01)
    assert kernel[0] > 0.5  # the flat kernel mean at 0 h
    inside = (grid >= 11.0) & (grid <= 97.0)  # within a grid step of the assays
    np.testing.assert_array_equal(curve[inside], kernel[inside])
    np.testing.assert_allclose(curve[grid > 97.0], 0.05 * grid[grid > 97.0], atol=0.05)


def test_out_of_fold_residuals_are_shrunk_to_the_ensembles_error() -> None:
    """One member's residual = the ensemble's error + its own deviation from the ensemble;
    over many rows the shrunk residuals' variance is the ensemble's (within sampling error)."""
    rng = np.random.default_rng(0)
    n, k, spread = 4000, 5, 0.8
    elapsed = rng.uniform(0, 100, n)
    ensemble_error = rng.normal(0, 1.0, n)
    members = rng.normal(0, spread, (n, k))
    single = ensemble_error + members[:, 0] - members.mean(axis=1)
    shrunk = as_ensemble(single, members, np.ones(n), elapsed)
    expected = np.sqrt(1.0 + spread**2 * (1 - 1 / k))
    assert np.std(single) == pytest.approx(expected, rel=0.05)
    assert np.std(shrunk) == pytest.approx(1.0, rel=0.05)
    assert np.all(np.sign(shrunk) == np.sign(single))
    # residuals made by the whole ensemble (or with one member) are left as they are
    assert np.array_equal(as_ensemble(single, members, np.full(n, k), elapsed), single)
    assert np.array_equal(as_ensemble(single, members[:, :1], np.ones(n), elapsed), single)
