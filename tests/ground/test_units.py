from __future__ import annotations

import numpy as np
import pytest

from bioprocessml.units import CANONICAL, UNITS, from_canonical, get_unit, to_canonical


@pytest.mark.parametrize(
    ("value", "unit", "canonical"),
    [(90, "min", 1.5), (1, "d", 24), (2500, "mg/L", 2.5), (310.15, "K", 37.0), (98.6, "degF", 37.0),
     (500, "mL", 0.5), (10, "mL/min", 0.6), (0.3, "fraction", 30.0), (150, "kPa", 1.5)],
)  # fmt: skip
def test_to_canonical(value: float, unit: str, canonical: float) -> None:
    assert to_canonical([value], unit)[0] == pytest.approx(canonical)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_round_trip_and_canonical_is_identity(unit: str) -> None:
    values = np.array([-3.0, 0.0, 12.5])
    assert from_canonical(to_canonical(values, unit), unit) == pytest.approx(values)
    canonical = CANONICAL[get_unit(unit).dimension]
    assert to_canonical(values, canonical) == pytest.approx(values)


def test_unknown_unit_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown unit 'g/dl'; known units: .*g/L"):
        get_unit("g/dl")
