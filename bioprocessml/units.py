"""Units: any unit pint parses, the spellings bioprocess files use, and one canonical unit per
dimension that every stage computes with.

A unit is resolved through pint once and kept as an affine map onto its dimension's canonical
unit (canonical = value * scale + offset), so converting a column is one numpy multiply-add,
never a pint object per cell. pint is imported on the first lookup, not at import time.
"""

from __future__ import annotations

import difflib
import re
import tokenize
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd
    import pint

# Time may also be given as wall-clock timestamps; the loader turns them into elapsed hours.
DATETIME = "datetime"
ISO8601 = "ISO8601"
# Patterns tried for timestamps that are not ISO 8601 (time of day required: a date alone
# cannot order a batch's readings).
TIMESTAMP_FORMATS = tuple(
    f"{date} {clock}"
    for date in ("%d.%m.%Y", "%d/%m/%Y", "%d-%m-%Y", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%y", "%d/%m/%y",
                 "%m/%d/%y", "%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%d-%b-%y")
    for clock in ("%H:%M:%S", "%H:%M", "%H:%M:%S.%f", "%I:%M:%S %p", "%I:%M %p")
)  # fmt: skip


def timestamp_readings(text: pd.Series) -> dict[str, pd.Series]:
    """Every reading of these stamps that reads all of them: ISO 8601 alone if it does, else
    each pattern of `TIMESTAMP_FORMATS` that does (03.04.2026 reads day- and month-first)."""
    import pandas as pd

    given = text.dropna().str.strip()
    if given.empty:
        return {}
    iso = pd.to_datetime(given, format=ISO8601, errors="coerce", utc=True)
    if iso.notna().all():
        return {ISO8601: iso}
    sample = given.head(50)
    fits = [f for f in TIMESTAMP_FORMATS
            if pd.to_datetime(sample, format=f, errors="coerce", utc=True).notna().all()]  # fmt: skip
    readings = {f: pd.to_datetime(given, format=f, errors="coerce", utc=True) for f in fits}
    return {f: r for f, r in readings.items() if r.notna().all()}


def read_timestamps(text: pd.Series, fmt: str | None = None) -> pd.Series:
    """Timestamps (UTC) from text, unreadable → NaT: by the strftime pattern `fmt` if given,
    else as ISO 8601 or as the one pattern that reads every stamp. Stamps two patterns read
    differently (03.04.2026 with no day above 12: March or April?) are all unreadable, never
    guessed: pandas guesses month-first from the first stamp, which turned day-first files
    into wrong dates and gaps without a word."""
    import pandas as pd

    clean = text.str.strip() if text.dtype == object else text
    if fmt:
        return pd.to_datetime(clean, format=fmt, errors="coerce", utc=True)
    readings = list(timestamp_readings(clean).values())
    if readings and all(r.equals(readings[0]) for r in readings[1:]):
        return readings[0].reindex(clean.index)
    return pd.to_datetime(clean, format=ISO8601, errors="coerce", utc=True)


# Dimension name → the unit every stage computes in. The first nine are the units the
# pipeline has always used (models and drift references depend on them); pH, agitation and
# optical density are kinds of their own that never convert into anything else.
CANONICAL: dict[str, str] = {
    "time": "h",
    "concentration": "g/L",
    "temperature": "degC",
    "volume": "L",
    "flow": "L/h",  # liquid and gas volume flows alike (aeration in L/min is 60 L/h per L/min)
    "dimensionless": "%",
    "ph": "pH",
    "speed": "rpm",
    "pressure": "bar",
    "mass": "kg",
    "energy": "kJ",
    "mass_flow": "g/h",
    "viscosity": "cP",
    "power": "W",
    "rate": "1/h",
    "molar_concentration": "mmol/L",
    "amount": "mmol",
    "molar_flow": "mmol/h",
    "volumetric_rate": "g/L/h",
    "molar_volumetric_rate": "mmol/L/h",
    "temperature_rate": "K/h",
    "electric_potential": "mV",
    "conductivity": "mS/cm",
    "optical_density": "OD600",
    "length": "m",
}

# Dimensions whose values cannot be below zero: a plausible range never starts below 0.
NONNEGATIVE = frozenset(
    {"time", "concentration", "volume", "flow", "dimensionless", "ph", "speed", "mass",
     "viscosity", "molar_concentration", "amount", "conductivity", "optical_density", "length"}
)  # fmt: skip

# Kinds pint does not have, as base dimensions of their own.
DEFINITIONS = (
    "ph_value = [ph]",
    "optical_density_600 = [optical_density]",
    "stirrer_revolution = [rotation]",
)

# Spellings users write → what pint should read. Whole unit strings only.
ALIASES = {
    "pH": "ph_value",
    "ph": "ph_value",  # not picohour
    "PH": "ph_value",  # not petahenry
    "OD600": "optical_density_600",
    "OD": "optical_density_600",
    "rpm": "stirrer_revolution / minute",
    "RPM": "stirrer_revolution / minute",
    "rev/min": "stirrer_revolution / minute",
    "vvm": "1 / minute",  # gas volume per liquid volume per minute
    "fraction": "dimensionless",
    "-": "dimensionless",
    "%sat": "percent",
    "% sat": "percent",
    "%DO": "percent",
    "cps": "centipoise",  # Brookfield viscometers' spelling, not counts per second
    "C": "degC",  # Celsius, never coulomb, in a batch record
    "deg C": "degC",
    "Celsius": "degC",
    "Fahrenheit": "degF",
    "F": "degF",
    "barg": "bar",  # gauge pressure stays gauge: only the unit is read
    "Lpm": "L/min",
    "lpm": "L/min",
    "Lph": "L/h",
    "lph": "L/h",
    # gas flows at normal/standard conditions: read as the volume flow they are written in
    "Nm3/h": "m**3 / hour",
    "Nm³/h": "m**3 / hour",
    "Nm3/min": "m**3 / minute",
    "NL/min": "liter / minute",
    "Nl/min": "liter / minute",
    "slpm": "liter / minute",
    "sccm": "milliliter / minute",
}

# Offered as suggestions for a unit that does not parse (with the aliases and canonical units).
EXAMPLES = (
    "s", "min", "d", "K", "degF", "mg/L", "ug/mL", "mg/mL", "kg/m3", "g/kg", "mL", "m3",
    "mL/h", "mL/min", "L/min", "m3/h", "m3/min", "g/min", "kg/h", "mbar", "kPa", "psi", "mPa*s",
    "J", "MJ", "kW", "mM", "mol", "mmol/h", "ppm", "uS/cm", "1/min", "degC", "%",
)  # fmt: skip

# pint counts angles as plain numbers: "deg" would silently become a percentage.
ANGLES = ("radian", "degree", "steradian", "turn", "revolution", "arcminute", "arcsecond")
_POWER = re.compile(r"(?<![A-Za-zµ])(k?m|cm|mm|dm|ft|in)([23])(?![0-9])")  # m3 → m**3
_NEGATIVE_POWER = re.compile(r"(?<=[A-Za-z])-([1-9])\b")  # L-1 → L**-1


@dataclass(frozen=True)
class Unit:
    """A unit as an affine map onto its dimension's canonical unit."""

    symbol: str
    dimension: str
    canonical: str
    scale: float = 1.0
    offset: float = 0.0

    @property
    def nonnegative(self) -> bool:
        return self.dimension in NONNEGATIVE


@dataclass(frozen=True)
class _Registry:
    ureg: pint.UnitRegistry[Any]
    dimensions: dict[str, str]  # str(pint dimensionality) → dimension name


@cache
def _registry() -> _Registry:
    import pint

    ureg: pint.UnitRegistry[Any] = pint.UnitRegistry(cache_folder=None)
    for definition in DEFINITIONS:
        ureg.define(definition)
    dimensions = {
        str(ureg.parse_units(_pint_expression(symbol)).dimensionality): name
        for name, symbol in CANONICAL.items()
    }
    return _Registry(ureg, dimensions)


def _pint_expression(symbol: str) -> str:
    text = symbol.strip()
    if text in ALIASES:
        return ALIASES[text]
    text = text.replace("·", "*").replace("³", "**3").replace("²", "**2")
    return _NEGATIVE_POWER.sub(r"**-\1", _POWER.sub(r"\1**\2", text))


def suggest_unit(symbol: str) -> str | None:
    """The known spelling closest to a unit that does not parse (by difflib), if any is close."""
    known = [*ALIASES, *CANONICAL.values(), *EXAMPLES]
    by_lower = {k.lower(): k for k in reversed(known)}
    close = difflib.get_close_matches(symbol.strip().lower(), list(by_lower), n=1, cutoff=0.5)
    return by_lower[close[0]] if close else None


def _unknown(symbol: str) -> ValueError:
    hint = suggest_unit(symbol)
    did_you_mean = f"; did you mean {hint!r}?" if hint else ""
    return ValueError(
        f"unknown unit {symbol!r}{did_you_mean} (any unit pint knows, e.g. g/L, mg/L, degC, K, "
        "L/h, m3/min, rpm, %, pH, cP)"
    )


def _parse(reg: _Registry, symbol: str) -> pint.Unit:
    import pint

    if not symbol.strip():
        raise ValueError("empty unit: give one, e.g. g/L, or 1 for a plain number")
    try:
        unit = reg.ureg.parse_units(_pint_expression(symbol))
    # pint's parser fails in many ways on malformed text (even AssertionError)
    except (pint.PintError, AssertionError, AttributeError, SyntaxError, TypeError, ValueError,
            KeyError, tokenize.TokenError):  # fmt: skip
        raise _unknown(symbol) from None
    if not unit.dimensionality and any(angle in str(unit) for angle in ANGLES):
        raise ValueError(f"{symbol!r} is an angle, not a unit of batch data (degC for Celsius?)")
    return unit


@cache
def get_unit(symbol: str) -> Unit:
    """Resolve a unit symbol once; raises ValueError naming it and the closest known unit."""
    import pint

    reg = _registry()
    unit = _parse(reg, symbol)
    key = str(unit.dimensionality)
    dimension = reg.dimensions.get(key, key)
    if dimension in CANONICAL:
        canonical = CANONICAL[dimension]
        target = reg.ureg.parse_units(_pint_expression(canonical))
    else:  # a dimension without a listed unit computes in SI base units
        target = reg.ureg.get_root_units(unit)[1]
        canonical = f"{target:~}"
    try:  # two points fix the affine map: offset units (degC, degF) convert exactly
        zero = reg.ureg.Quantity(0.0, unit).to(target).magnitude
        one = reg.ureg.Quantity(1.0, unit).to(target).magnitude
    except pint.PintError as exc:
        raise ValueError(f"unit {symbol!r} cannot be converted to {canonical}: {exc}") from None
    return Unit(symbol, dimension, canonical, float(one - zero), float(zero))


def dimension_of(symbol: str) -> str:
    return get_unit(symbol).dimension


def canonical_of(symbol: str) -> str:
    return get_unit(symbol).canonical


def to_canonical(values: npt.ArrayLike, symbol: str) -> npt.NDArray[np.float64]:
    unit = get_unit(symbol)
    return np.asarray(values, dtype=float) * unit.scale + unit.offset


def from_canonical(values: npt.ArrayLike, symbol: str) -> npt.NDArray[np.float64]:
    unit = get_unit(symbol)
    return (np.asarray(values, dtype=float) - unit.offset) / unit.scale
