from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bioprocessml.errors import SpecError
from bioprocessml.settings import DEFAULT_SPEC
from bioprocessml.spec import DatasetSpec, load_spec


def write_variant(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load(DEFAULT_SPEC.read_text())
    edit(raw)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_spec_loads(spec: DatasetSpec) -> None:
    assert spec.target == "titer"
    assert spec.variable("temperature").canonical_unit == "degC"
    assert spec.names_with(dimension="concentration") == ["biomass", "substrate", "titer"]
    assert spec.names_with(role="feed") == ["feed_rate"]
    assert len(spec.sha256) == 64 and spec.source == DEFAULT_SPEC


def test_second_spec_converts_ranges_to_canonical_units(plant_spec: DatasetSpec) -> None:
    low, high = plant_spec.variable("temperature").canonical_range or (0, 0)
    assert (low, high) == pytest.approx((19.85, 44.85))
    assert plant_spec.variable("titer").canonical_range == pytest.approx((0.0, 30.0))
    assert plant_spec.batch_id.filename_pattern


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda r: r.pop("target"), "target", "Field required"),
        (lambda r: r["time"].pop("column"), "time.column", "Field required"),
        (lambda r: r["online"][1].pop("column"), "online[1] (ph).column", "Field required"),
        (
            lambda r: r["online"][0].update(unit="Celsuis"),
            "online[0] (temperature).unit",
            "unknown unit 'Celsuis'; did you mean 'Celsius'?",
        ),
        (
            lambda r: r["offline"][2].update(unit="mg/dL/"),
            "offline[2] (titer).unit",
            "unknown unit 'mg/dL/'",
        ),
        (
            lambda r: r["online"][5].update(unit="L"),
            "online[5] (feed_rate)",
            "a feed is integrated over time",
        ),
        (
            lambda r: r.update(unmeasured=[{"name": "nh3", "column": "NH3", "unit": "mgL"}]),
            "unmeasured[0] (nh3).unit",
            "did you mean 'mg/L'?",
        ),
        (lambda r: r["offline"][2].update(range=[30, 0]), "offline[2] (titer).range", "low < high"),
        (
            lambda r: r["online"][0].update(range=[1]),
            "online[0] (temperature).range[1]",
            "Field required",
        ),
        (
            lambda r: r.update(target="glucose"),
            "target 'glucose' must name an offline variable",
            "",
        ),
        (lambda r: r["online"][0].update(name="ph"), "repeated: ['ph']", ""),
        (lambda r: r["time"].update(unit="g/L"), "time.unit", "unit of time"),
        (
            lambda r: r["online"][0].update(colour="red"),
            "online[0] (temperature).colour",
            "Extra inputs",
        ),
        (lambda r: r.update(batch_id={"filename_pattern": "(.*)"}), "batch_id", "(?P<batch_id>"),
        (lambda r: r.update(batch_id={}), "batch_id", "exactly one"),
    ],
)
def test_malformed_spec_names_file_and_field(tmp_path: Path, edit, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    path = write_variant(tmp_path, edit)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid dataset spec")
    assert field in message and words in message


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: dataset spec not found"):
        load_spec(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "words"), [("a: [1, 2", "not valid YAML"), ("- 1\n- 2\n", "YAML mapping")]
)
def test_unparseable_spec(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match=words) as info:
        load_spec(path)
    assert str(path) in str(info.value)
