from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bioprocessml.units import (
    ALIASES,
    CANONICAL,
    EXAMPLES,
    dimension_of,
    from_canonical,
    get_unit,
    read_timestamps,
    to_canonical,
)

# Every unit of the IndPenSim dev set (see its README) and the simulator's, with a value and
# what it is in the canonical unit of its dimension.
DEV_SET_UNITS = [
    (2500, "mg/L", 2.5, "concentration", "g/L"),
    (31.5, "g/L", 31.5, "concentration", "g/L"),
    (21.0, "%", 21.0, "dimensionless", "%"),
    (6.5, "pH", 6.5, "ph", "pH"),
    (25.0, "degC", 25.0, "temperature", "degC"),
    (58000, "L", 58000, "volume", "L"),
    (61000, "kg", 61000, "mass", "kg"),
    (1036, "kJ", 1036, "energy", "kJ"),
    (1.5, "g/min", 90.0, "mass_flow", "g/h"),
    (1.9, "g/h", 1.9, "mass_flow", "g/h"),
    (150, "L/h", 150, "flow", "L/h"),
    (30, "m3/min", 1_800_000, "flow", "L/h"),
    (30, "m³/min", 1_800_000, "flow", "L/h"),
    (100, "rpm", 100, "speed", "rpm"),
    (0.6, "bar", 0.6, "pressure", "bar"),
    (86.6, "cP", 86.6, "viscosity", "cP"),
    (12.0, "h", 12.0, "time", "h"),
]


@pytest.mark.parametrize(("value", "unit", "canonical", "dimension", "symbol"), DEV_SET_UNITS)
def test_dev_set_units_parse_and_convert(
    value: float, unit: str, canonical: float, dimension: str, symbol: str
) -> None:
    resolved = get_unit(unit)
    assert (resolved.dimension, resolved.canonical) == (dimension, symbol)
    assert to_canonical([value], unit)[0] == pytest.approx(canonical)
    assert from_canonical([canonical], unit)[0] == pytest.approx(value)


@pytest.mark.parametrize(
    ("value", "unit", "canonical"),
    [(90, "min", 1.5), (1, "d", 24), (3600, "s", 1), (310.15, "K", 37.0), (98.6, "degF", 37.0),
     (-40, "degF", -40.0), (0, "K", -273.15), (500, "mL", 0.5), (10, "mL/min", 0.6),
     (0.3, "fraction", 30.0), (150, "kPa", 1.5), (1, "kg/m3", 1.0), (2, "mg L-1", 0.002),
     (1, "vvm", 60.0), (5, "mPa*s", 5.0), (2, "L/min", 120), (0.5, "OD600", 0.5)],
)  # fmt: skip
def test_to_canonical(value: float, unit: str, canonical: float) -> None:
    assert to_canonical([value], unit)[0] == pytest.approx(canonical)


def test_temperatures_convert_affinely_both_ways() -> None:
    kelvin = np.array([273.15, 298.15, 310.15])
    celsius = to_canonical(kelvin, "K")
    np.testing.assert_allclose(celsius, [0.0, 25.0, 37.0])
    np.testing.assert_allclose(from_canonical(celsius, "degF"), [32.0, 77.0, 98.6])
    # a scale alone (no offset) would map 0 K to 0 °C: the offset is applied once, not twice
    assert from_canonical(to_canonical([0.0], "K"), "K")[0] == pytest.approx(0.0)


@pytest.mark.parametrize("unit", sorted({*ALIASES, *CANONICAL.values(), *EXAMPLES}))
def test_round_trip_and_canonical_is_identity(unit: str) -> None:
    values = np.array([-3.0, 0.0, 12.5])
    assert from_canonical(to_canonical(values, unit), unit) == pytest.approx(values)
    canonical = get_unit(unit).canonical
    assert get_unit(canonical).dimension == dimension_of(unit)
    assert to_canonical(values, canonical) == pytest.approx(values)


@pytest.mark.parametrize(
    ("unit", "dimension"),
    [("pH", "ph"), ("ph", "ph"), ("rpm", "speed"), ("C", "temperature"), ("cps", "viscosity"),
     ("OD600", "optical_density"), ("1/h", "rate"), ("mM", "molar_concentration")],
)  # fmt: skip
def test_bioprocess_spellings_win_over_pints_reading(unit: str, dimension: str) -> None:
    """pint alone reads pH as picohenry, ph as picohour, C as coulomb, cps as counts/s."""
    assert dimension_of(unit) == dimension


def test_kinds_of_their_own_never_convert_into_each_other() -> None:
    assert len({dimension_of(u) for u in ("pH", "rpm", "OD600", "%", "1/min")}) == 5


def test_a_dimension_without_a_listed_unit_computes_in_si_base_units() -> None:
    cells = get_unit("1/mL")
    assert cells.canonical == "1 / m ** 3" and cells.scale == pytest.approx(1e6)


@pytest.mark.parametrize(
    ("unit", "words"),
    [("g/Lt", "unknown unit 'g/Lt'; did you mean 'g/L'?"), ("rmp", "did you mean 'rpm'?"),
     ("degc", "did you mean 'degC'?"), ("mgl", "did you mean 'mg/L'?"), ("1000 L", "unknown unit"),
     ("", "empty unit"), ("deg", "an angle")],
)  # fmt: skip
def test_unknown_unit_suggests_the_closest_known_one(unit: str, words: str) -> None:
    with pytest.raises(ValueError) as info:
        get_unit(unit)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("stamps", "first", "second"),
    [(["2026-03-04 08:00:00", "2026-03-04T09:30:00Z"], "2026-03-04 08:00", "2026-03-04 09:30"),
     (["03/14/2026 08:00", "03/15/2026 09:00"], "2026-03-14 08:00", "2026-03-15 09:00"),
     (["3/14/2026 8:00:00 AM", "3/14/2026 1:00:00 PM"], "2026-03-14 08:00", "2026-03-14 13:00"),
     (["14-Mar-2026 08:00:00", "15-Mar-2026 09:00:00"], "2026-03-14 08:00", "2026-03-15 09:00"),
     ([" 14.03.2026 08:00", "15.03.2026 09:00 "], "2026-03-14 08:00", "2026-03-15 09:00")],
)  # fmt: skip
def test_timestamps_read_as_iso_or_one_unambiguous_pattern(
    stamps: list[str], first: str, second: str
) -> None:
    read = read_timestamps(pd.Series(stamps, dtype=object))
    assert [t.strftime("%Y-%m-%d %H:%M") for t in read] == [first, second]


def test_timestamps_two_patterns_read_differently_are_never_guessed() -> None:
    """03/01 is 1 March to a US plant, 3 January elsewhere: unreadable until the spec says."""
    stamps = pd.Series(["03/01/2026 08:00", "03/02/2026 09:00"], dtype=object)
    assert read_timestamps(stamps).isna().all()
    us = read_timestamps(stamps, "%m/%d/%Y %H:%M")
    assert [t.strftime("%d %b") for t in us] == ["01 Mar", "02 Mar"]
