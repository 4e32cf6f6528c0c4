"""Model inputs: a missing sensor window in one history is filled with the training means."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bioprocessml.dataset import TIME
from bioprocessml.spec import DatasetSpec
from models.features import FeatureSpec, feature_matrix, make_samples
from models.pls import PLSModel

pytestmark = pytest.mark.unit


def test_missing_values_use_training_means(
    spec: DatasetSpec, normal_batches: list[pd.DataFrame]
) -> None:
    fs = FeatureSpec.from_spec(spec)
    names = fs.names("soft_sensor")
    samples = make_samples(normal_batches[:6], fs, "soft_sensor")
    history = samples.histories[3].copy()
    history.loc[history.index[-12:], "temperature"] = np.nan  # probe silent for the last hour
    fill = np.arange(len(names), dtype=float)
    column = names.index("temperature_now")
    assert feature_matrix([history], fs, "soft_sensor", fill=fill)[0, column] == fill[column]
    model = PLSModel("soft_sensor", fs).fit(samples)
    assert model.fill_[column] == pytest.approx(
        feature_matrix(samples.histories, fs, "soft_sensor")[:, column].mean()
    )
    gap, intact = model.predict([history]).mean[0], model.predict([samples.histories[3]]).mean[0]
    assert abs(gap - intact) < 0.5, "a silent probe must not read as 0 °C"


def test_a_soft_sensor_sample_hides_its_own_assay_only(
    spec: DatasetSpec, normal_batches: list[pd.DataFrame]
) -> None:
    """Held out or trained on, a sample at an assay must not carry that assay's result: a
    `+assays` candidate would return it and score an error of 0 in the gate."""
    fs = FeatureSpec.from_spec(spec)
    samples = make_samples(normal_batches[:2], fs, "soft_sensor")
    batch = normal_batches[0]
    for history, target in zip(samples.histories[3:6], samples.targets[3:6], strict=True):
        assert np.isnan(history[fs.target].iloc[-1])
        earlier = history[fs.target].iloc[:-1].dropna()
        full = batch.loc[batch[TIME] < history[TIME].iloc[-1], fs.target].dropna()
        assert len(earlier) == len(full) > 0, "earlier assays stay"
        assert target == pytest.approx(
            float(batch.loc[batch[TIME] == history[TIME].iloc[-1], fs.target].iloc[0])
        )
    harvest = make_samples(normal_batches[:1], fs, "harvest")
    assert harvest.histories[-1][fs.target].notna().any()
