"""GP candidate: analytic checks in gpytorch's style (a noisy sine, fixed seeds, asserted bounds),
then simulated batches held out whole, against a plain PLS baseline built here."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd
import pytest

from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import DatasetSpec
from models.base import Candidate, FloatArray, Prediction, Samples, Task
from models.features import FeatureSpec, make_samples
from models.gp import GPModel, state_features

NOISE = 0.1


def report(name: str, value: object) -> None:
    """Measured numbers, for information: shown with `pytest -rP` (or `-s`)."""
    print(f"gp metric {name} = {value}")


def rmse(predicted: FloatArray, observed: FloatArray) -> float:
    return float(np.sqrt(np.mean((predicted - observed) ** 2)))


def coverage(prediction: Prediction, observed: FloatArray) -> float:
    return float(np.mean((observed >= prediction.lower) & (observed <= prediction.upper)))


def noisy_sine(n: int, seed: int) -> tuple[FloatArray, FloatArray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2 * np.pi, (n, 1))
    return x, np.sin(x[:, 0]) + rng.normal(0.0, NOISE, n)


@pytest.fixture(scope="module")
def fs(spec: DatasetSpec) -> FeatureSpec:
    return FeatureSpec.from_spec(spec)


def test_exact_gp_fits_a_noisy_sine(fs: FeatureSpec) -> None:
    x, y = noisy_sine(120, seed=0)
    x_test, y_test = noisy_sine(400, seed=1)
    model = GPModel("soft_sensor", fs, seed=0).fit_matrix(x, y)
    prediction = model.predict_matrix(x_test)
    assert model.params_["kind"] == "exact"
    assert rmse(prediction.mean, np.sin(x_test[:, 0])) < 0.05
    assert 0.5 * NOISE < float(model.params_["noise_std"]) < 1.5 * NOISE
    assert 0.90 <= coverage(prediction, y_test) <= 0.99
    assert model.calibration_ is not None and model.calibration_.factor > 0


def test_variational_gp_fits_a_larger_sine(fs: FeatureSpec) -> None:
    x, y = noisy_sine(1500, seed=2)
    x_test, y_test = noisy_sine(400, seed=3)
    model = GPModel("soft_sensor", fs, iterations=40, sparse_threshold=500, inducing_points=32)
    prediction = model.fit_matrix(x, y).predict_matrix(x_test)
    assert model.params_["kind"] == "variational"
    assert model.params_["inducing_points"] == 32
    assert rmse(prediction.mean, np.sin(x_test[:, 0])) < 0.04
    assert 0.90 <= coverage(prediction, y_test) <= 0.99
    restored = pickle.loads(pickle.dumps(model)).predict_matrix(x_test)
    np.testing.assert_array_equal(restored.upper, prediction.upper)


def test_fixed_seed_gives_identical_fits(fs: FeatureSpec) -> None:
    """The variational path draws random numbers (k-means, minibatches): the seed fixes them."""
    x, y = noisy_sine(400, seed=4)
    fits = [
        GPModel("soft_sensor", fs, seed=3, iterations=3, sparse_threshold=100, calibrate=False)
        .fit_matrix(x, y)
        .predict_matrix(x[:50])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].mean, fits[1].mean)
    np.testing.assert_array_equal(fits[0].upper, fits[1].upper)


def test_predict_before_fit_is_an_error(fs: FeatureSpec) -> None:
    model: Candidate = GPModel("soft_sensor", fs)
    assert model.name == "gp"
    with pytest.raises(RuntimeError, match="not fitted"):
        GPModel("soft_sensor", fs).predict_matrix(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="finite"):
        GPModel("soft_sensor", fs).fit_matrix(np.array([[np.nan]]), np.zeros(1))


def test_state_features_keep_totals_and_add_them_per_litre(fs: FeatureSpec) -> None:
    names = fs.names("soft_sensor")
    matrix = np.arange(1.0, len(names) + 1)[None, :]
    inputs, kept = state_features(matrix, names, volume=True)
    assert "temperature_now" not in kept and "elapsed_h" in kept and "volume_now" in kept
    assert kept[-3:] == ["feed_rate_cum_per_l", "offgas_o2_int_per_l", "offgas_co2_int_per_l"]
    volume, fed = matrix[0, names.index("volume_now")], matrix[0, names.index("feed_rate_cum")]
    assert inputs[0, kept.index("feed_rate_cum_per_l")] == pytest.approx(fed / volume)


# --- simulated batches: 20 for training, 10 held out whole ---
# GP vs PLS and interval coverage over several seeds: tests/models/test_candidates.py.


@pytest.fixture(scope="module")
def batches() -> list[pd.DataFrame]:
    return simulate(30, "normal", seed=11)


def split(batches: list[pd.DataFrame], fs: FeatureSpec, task: Task) -> tuple[Samples, Samples]:
    return make_samples(batches[:20], fs, task), make_samples(batches[20:], fs, task)


@pytest.fixture(scope="module")
def soft_sensor(batches: list[pd.DataFrame], fs: FeatureSpec) -> tuple[Samples, Samples]:
    return split(batches, fs, "soft_sensor")


@pytest.fixture(scope="module")
def soft_gp(
    soft_sensor: tuple[Samples, Samples], fs: FeatureSpec
) -> tuple[GPModel, Prediction, float]:
    train, test = soft_sensor
    start = time.perf_counter()
    model = GPModel("soft_sensor", fs, seed=0).fit(train)
    seconds = time.perf_counter() - start
    return model, model.predict(test.histories), seconds


def test_pickle_round_trip_gives_identical_predictions(
    soft_sensor: tuple[Samples, Samples], soft_gp: tuple[GPModel, Prediction, float]
) -> None:
    _, test = soft_sensor
    model, prediction, _ = soft_gp
    restored = pickle.loads(pickle.dumps(model))
    again = restored.predict(test.histories)
    np.testing.assert_array_equal(again.mean, prediction.mean)
    np.testing.assert_array_equal(again.lower, prediction.lower)
    np.testing.assert_array_equal(again.upper, prediction.upper)
    assert restored.calibration_ is not None and model.calibration_ is not None
    np.testing.assert_array_equal(restored.calibration_.scale, model.calibration_.scale)
    assert restored.calibration_.factor == model.calibration_.factor
    assert restored.params_ == model.params_


def test_harvest_forecast_fits_and_predicts(batches: list[pd.DataFrame], fs: FeatureSpec) -> None:
    train, test = split(batches, fs, "harvest")
    model = GPModel("harvest", fs, seed=0).fit(train)
    prediction = model.predict(test.histories)
    assert prediction.mean.shape == test.targets.shape
    assert np.isfinite(prediction.frame().to_numpy()).all()
    assert (prediction.lower < prediction.mean).all() and (prediction.mean < prediction.upper).all()
    # For information (NOTES: early forecasts barely beat the mean of past batches).
    half = np.isclose(test.fractions, 0.5)
    naive = np.full(half.sum(), train.targets[np.isclose(train.fractions, 1.0)].mean())
    report("harvest_rmse_at_50pct", round(rmse(prediction.mean[half], test.targets[half]), 4))
    report("naive_rmse_at_50pct", round(rmse(naive, test.targets[half]), 4))
    report("harvest_rmse", round(rmse(prediction.mean, test.targets), 4))
    report("harvest_coverage", round(coverage(prediction, test.targets), 3))
