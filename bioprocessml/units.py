"""Units the dataset spec understands, and conversion to one canonical unit per dimension.

Every later stage works in canonical units (hours, g/L, degC, L, L/h, %), so a user's file in
mg/L or minutes needs only a different spec, never different code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Unit:
    """A unit as an affine map onto its dimension's canonical unit: canonical = value * scale + offset."""

    dimension: str
    scale: float = 1.0
    offset: float = 0.0


CANONICAL = {
    "time": "h",
    "concentration": "g/L",
    "temperature": "degC",
    "volume": "L",
    "flow": "L/h",
    "percent": "%",
    "ph": "pH",
    "speed": "rpm",
    "pressure": "bar",
    "dimensionless": "1",
}

UNITS: dict[str, Unit] = {
    # time
    "s": Unit("time", 1 / 3600),
    "min": Unit("time", 1 / 60),
    "h": Unit("time"),
    "d": Unit("time", 24.0),
    # mass concentration
    "g/L": Unit("concentration"),
    "kg/m3": Unit("concentration"),
    "mg/mL": Unit("concentration"),
    "mg/L": Unit("concentration", 1e-3),
    "ug/mL": Unit("concentration", 1e-3),
    # temperature
    "degC": Unit("temperature"),
    "K": Unit("temperature", 1.0, -273.15),
    "degF": Unit("temperature", 5 / 9, -32 * 5 / 9),
    # volume
    "L": Unit("volume"),
    "mL": Unit("volume", 1e-3),
    "m3": Unit("volume", 1e3),
    # volumetric flow
    "L/h": Unit("flow"),
    "mL/h": Unit("flow", 1e-3),
    "mL/min": Unit("flow", 60e-3),
    "L/min": Unit("flow", 60.0),
    # percent (dissolved oxygen saturation, off-gas mole fraction)
    "%": Unit("percent"),
    "fraction": Unit("percent", 100.0),
    "pH": Unit("ph"),
    "rpm": Unit("speed"),
    "bar": Unit("pressure"),
    "kPa": Unit("pressure", 1e-2),
    "1": Unit("dimensionless"),
}

# Time may also be given as wall-clock timestamps; the loader turns them into elapsed hours.
DATETIME = "datetime"


def get_unit(symbol: str) -> Unit:
    """Look up a unit symbol; the error lists what is known, so a spec author can fix a typo."""
    try:
        return UNITS[symbol]
    except KeyError:
        known = ", ".join(sorted(UNITS))
        raise ValueError(f"unknown unit {symbol!r}; known units: {known}") from None


def dimension_of(symbol: str) -> str:
    return get_unit(symbol).dimension


def to_canonical(values: npt.ArrayLike, symbol: str) -> npt.NDArray[np.float64]:
    unit = get_unit(symbol)
    return np.asarray(values, dtype=float) * unit.scale + unit.offset


def from_canonical(values: npt.ArrayLike, symbol: str) -> npt.NDArray[np.float64]:
    unit = get_unit(symbol)
    return (np.asarray(values, dtype=float) - unit.offset) / unit.scale
