"""What a column header says: its unit (`_mg_l`, `[K]`, `(rpm)`, `degC` …), a canonical name,
and the words that hint at a role (feed, off-gas), the time, the batch id or the target.

Every guess comes with the reason the draft writes beside it as a YAML comment.
"""

from __future__ import annotations

import itertools
import re

from bioprocessml.spec import IDENTIFIER
from bioprocessml.units import get_unit

# Header suffixes (lower case, tokens joined by "_") → unit. Longest suffix wins.
SUFFIXES = {
    "g_l": "g/L", "gl": "g/L", "mg_l": "mg/L", "mgl": "mg/L", "ug_ml": "ug/mL", "mg_ml": "mg/mL",
    "g_kg": "g/kg", "kg_m3": "kg/m3", "mmol_l": "mmol/L", "mol_l": "mol/L", "g_l_h": "g/L/h",
    "mmol_l_h": "mmol/L/h", "pct": "%", "percent": "%", "perc": "%", "c": "degC", "degc": "degC",
    "celsius": "degC", "k": "K", "kelvin": "K", "degf": "degF", "l": "L", "ml": "mL", "m3": "m3",
    "kg": "kg", "g": "g", "kj": "kJ", "j": "J", "mj": "MJ", "kw": "kW", "w": "W", "g_min": "g/min",
    "g_h": "g/h", "g_s": "g/s", "kg_h": "kg/h", "l_h": "L/h", "lph": "L/h", "ml_h": "mL/h",
    "l_min": "L/min", "lpm": "L/min", "ml_min": "mL/min", "m3_min": "m3/min", "m3_h": "m3/h",
    "mmol_h": "mmol/h", "rpm": "rpm", "vvm": "vvm", "bar": "bar", "barg": "barg", "mbar": "mbar",
    "kpa": "kPa", "psi": "psi", "cp": "cP", "mpas": "mPa*s", "ph": "pH", "od600": "OD600",
    "h": "h", "hr": "h", "hrs": "h", "hours": "h", "min": "min", "s": "s", "sec": "s", "d": "d",
    "days": "d", "mv": "mV", "ms_cm": "mS/cm", "us_cm": "uS/cm", "1_h": "1/h", "per_h": "1/h",
    "lh": "L/h", "lmin": "L/min", "mlh": "mL/h", "mlmin": "mL/min", "m3h": "m3/h",
    "m3min": "m3/min", "nm3h": "Nm3/h", "nm3_h": "Nm3/h", "kgh": "kg/h",
}  # fmt: skip
# When the header names no unit: what its meaning suggests (a weaker guess, said so).
MEANINGS = [
    (re.compile(r"\bph\b"), "pH"),
    (re.compile(r"temp"), "degC"),
    (re.compile(r"stirr|agitat"), "rpm"),
    (re.compile(r"\bdo\b|dissolved oxygen|\bpo2\b"), "%"),
    (re.compile(r"volume"), "L"),
    (re.compile(r"weight|mass"), "kg"),
    (re.compile(r"pressure"), "bar"),
]
BRACKETS = re.compile(r"\s*[\[\(\{]\s*([^\]\)\}]*?)\s*[\]\)\}]\s*$")
FEED_WORDS = {"feed", "feeding", "dosing", "dose", "addition", "inflow"}
OUTFLOW_WORDS = {"discharge", "outflow", "bleed", "harvest", "drain", "cooling", "heating",
                 "jacket", "coolant", "out", "outlet"}  # fmt: skip
OFFGAS_WORDS = {"offgas", "exhaust", "vent", "exit", "our", "cer", "otr", "ctr"}
TIME_WORDS = {"time", "elapsed", "duration", "age", "hours", "timestamp", "date", "datetime",
              "t", "eft"}  # fmt: skip
BATCH_WORDS = {"batch", "batchid", "batch_id", "lot", "run", "runid", "charge", "id"}
TARGET_WORDS = {"titer", "titre", "product", "penicillin", "antibody", "mab", "igg", "potency"}


def tokens(header: str) -> list[str]:
    """Lower-case words of a header: 'TIC-101 [K]' → ['tic', '101', 'k']."""
    return [t for t in re.split(r"[^a-z0-9µ³]+", header.lower()) if t]


def _parses(unit: str) -> bool:
    try:
        get_unit(unit)
    except ValueError:
        return False
    return True


def unit_from_header(header: str) -> tuple[str | None, str, int]:
    """(unit, reason, how many trailing name tokens it used). The unit is None when the header
    names none; the caller then asks `unit_from_meaning`."""
    bracket = BRACKETS.search(header)
    if bracket and _parses(bracket.group(1)):
        return bracket.group(1), f"unit from the header's {header[bracket.start() :].strip()}", 0
    words = tokens(header)
    for n in (3, 2, 1):
        suffix = "_".join(words[-n:])
        if len(words) >= n and suffix in SUFFIXES and (len(words) > n or suffix == "ph"):
            return SUFFIXES[suffix], f"unit from the name's '{suffix}'", n
    return None, "", 0


def unit_from_meaning(header: str) -> tuple[str, str]:
    """A unit for a header without one: from what it measures, or a plain number."""
    words = " ".join(tokens(header))
    for pattern, unit in MEANINGS:
        if pattern.search(words):
            return unit, f"unit guessed from the name's meaning ({unit}): check it"
    return "1", "unit not in the name: set it (1 is a plain ratio, shown in %)"


def canonical_name(header: str, unit_tokens: int) -> str:
    """A lower_snake_case name: the header without its unit ('TIC-101 [K]' → 'tic_101')."""
    bracket = BRACKETS.search(header)
    words = tokens(header[: bracket.start()] if bracket else header)
    if unit_tokens and len(words) > unit_tokens:
        words = words[:-unit_tokens]
    name = re.sub(r"[^a-z0-9_]", "", "_".join(words).replace("µ", "u").replace("³", "3"))
    name = name or "column"
    return name if IDENTIFIER.match(name) else f"c_{name}"


def has_word(header: str, words: set[str]) -> bool:
    """Whether a header holds one of the words, alone or as two joined ('off gas' → offgas)."""
    found = tokens(header)
    pairs = [a + b for a, b in itertools.pairwise(found)]
    return any(w in words for w in [*found, *pairs])


def unique_names(names: list[str]) -> list[str]:
    """Make names unique by numbering repeats (`ph`, `ph_2`); `time` is taken by the time."""
    seen: dict[str, int] = {"time": 1}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
