"""Which candidates retraining may name: the four bases and `<base>+assays` for the soft sensor."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bioprocessml.settings import Settings, Training
from models.anchored import AssayAnchoredModel
from models.features import FeatureSpec
from models.hybrid import HybridModel
from models.training import build_candidate, candidates_for

pytestmark = pytest.mark.unit
FS = FeatureSpec(online=("ph",), cumulative=(), integrated=(), offline=("titer",), target="titer")


def test_hybrid_and_assays_names_are_admitted_and_built() -> None:
    settings = Settings(training=Training(candidates=["pls", "hybrid", "hybrid+assays"]))
    assert isinstance(build_candidate("hybrid", "harvest", FS, settings), HybridModel)
    anchored = build_candidate("hybrid+assays", "soft_sensor", FS, settings)
    assert isinstance(anchored, AssayAnchoredModel) and anchored.name == "hybrid+assays"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["pls", "rf"], "unknown candidates ['rf']"),
        (["gp+assay"], "unknown candidates ['gp+assay']"),
        (["pls+assays+assays"], "unknown candidates"),
        (["pls", "pls"], "name each candidate once"),
        ([], "at least one"),
    ],
)
def test_unknown_or_repeated_names_are_refused_with_the_known_ones(
    names: list[str], message: str
) -> None:
    with pytest.raises(ValidationError, match="candidates") as error:
        Training(candidates=names)
    assert message in str(error.value)
    if "unknown" in message:
        assert "pls, gp, lstm, hybrid" in str(error.value) and "'pls+assays'" in str(error.value)


def test_environment_names_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOPROCESSML_TRAINING__CANDIDATES", '["pls", "gp+assays"]')
    assert Settings().training.candidates == ["pls", "gp+assays"]
    monkeypatch.setenv("BIOPROCESSML_TRAINING__CANDIDATES", '["xgboost"]')
    with pytest.raises(ValidationError, match="unknown candidates"):
        Settings()


def test_assays_candidates_train_for_the_soft_sensor_only() -> None:
    settings = Settings(training=Training(candidates=["pls", "pls+assays", "hybrid"]))
    assert candidates_for("soft_sensor", settings) == ["pls", "pls+assays", "hybrid"]
    assert candidates_for("harvest", settings) == ["pls", "hybrid"]
