"""Drafting a dataset spec from batch files: each decision a guess with its reason.

Ranges are wide on purpose: a plausible range catches unit mix-ups and broken probes, while a
process change that stays within physics is the drift monitor's to find, not a reason to
quarantine a file. More files give ranges over all of them.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bioprocessml.errors import BioprocessMLError
from bioprocessml.spec import FEED_DIMENSIONS, CsvFormat
from bioprocessml.spec_draft import names as nm
from bioprocessml.spec_draft.columns import Column, Files
from bioprocessml.units import (
    DATETIME,
    ISO8601,
    TIMESTAMP_FORMATS,
    dimension_of,
    from_canonical,
    get_unit,
    read_timestamps,
    timestamp_readings,
    to_canonical,
)

SPARSE = 0.5  # a numeric column filled in fewer rows than this share is an offline assay
SET_POINT = 0.9  # share of unchanged steps that makes a column a held set-point
MISSING = 0.05  # the spec's default max_missing


@dataclass
class Guess:
    """One entry of the draft and why it is what it is (written as a YAML comment)."""

    entry: dict[str, Any]
    note: str = ""


@dataclass
class Draft:
    name: str
    description: str
    batch_id: Guess
    time: Guess
    csv: CsvFormat
    online: list[Guess] = field(default_factory=list)
    offline: list[Guess] = field(default_factory=list)
    target: Guess = field(default_factory=lambda: Guess({}))
    metadata: list[Guess] = field(default_factory=list)
    rules: list[Guess] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def nice(value: float, up: bool) -> float:
    """Round outward to two significant digits (up for an upper bound, down for a lower one)."""
    if value == 0 or not math.isfinite(value):
        return value
    step = 10 ** (math.floor(math.log10(abs(value))) - 1)
    return (math.ceil if up else math.floor)(value / step) * step


def plausible_range(values: np.ndarray, unit: str) -> tuple[tuple[float, float] | None, str]:
    """The data's span widened by twice the span on each side, and by at least a quarter of
    the values' size (half when constant; sizes in the canonical unit, so 300 K counts as
    27 °C): never below zero for a quantity that cannot be negative, nor below absolute zero."""
    if not len(values):
        return None, "no values seen: no range"
    low, high = float(values.min()), float(values.max())
    info = get_unit(unit)
    size = float(np.abs(to_canonical([low, high], unit)).max()) / info.scale
    margin = max(2 * (high - low), (0.25 if high > low else 0.5) * size)
    if margin == 0:
        return None, "always 0 in the data: no range"
    lo, hi = low - margin, high + margin
    if info.nonnegative and low >= 0:
        lo = max(lo, 0.0)
    if info.dimension == "temperature":
        lo = max(lo, float(from_canonical([-273.15], unit)[0]))
    step = 10 ** math.floor(math.log10(margin))
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return (lo, hi), f"range: data {low:.4g} to {high:.4g}, widened"


def increasing(column: Column) -> bool:
    for numbers in column.numbers:
        if not np.isfinite(numbers).all() or len(numbers) < 2:
            return False
        if (np.diff(numbers) > 0).mean() < 0.99:
            return False
    return True


def largest_step_s(stamps: pd.Series) -> float:
    steps = stamps.diff().dropna()
    return float(steps.max().total_seconds()) if len(steps) else 0.0


def timestamp_format(column: Column) -> tuple[str | None, str] | None:
    """How a text column's timestamps are written: (None, why) for ISO 8601, (pattern, why)
    for a pattern that reads every stamp of every file strictly in order; None if they are not
    timestamps. Where several do (no day above 12 anywhere), the one whose largest step
    between readings is smallest: read the wrong way, a batch crossing midnight jumps a month."""
    texts = [t.dropna() for t in column.texts]
    readings = [timestamp_readings(t) for t in texts if len(t)]
    if not readings:
        return None
    if all(ISO8601 in r for r in readings):
        return None, "ISO 8601 timestamps: hours from the first"
    fits = [f for f in TIMESTAMP_FORMATS
            if all(f in r and r[f].is_monotonic_increasing and r[f].is_unique for r in readings)]  # fmt: skip
    if not fits:
        return None
    steps = {f: max(largest_step_s(r[f]) for r in readings) for f in fits}
    fits.sort(key=steps.__getitem__)
    why = f"timestamps written {fits[0]}: hours from the first"
    others = [f for f in fits[1:] if steps[f] != steps[fits[0]]]
    if others:
        why += f" (they also read as {others[0]}, with longer steps: check)"
    return fits[0], why


def find_time(files: Files) -> Guess:
    """A column named like time with increasing numbers, or timestamps; else the first numeric
    column that increases in every file."""
    named = [h for h in files.columns if nm.has_word(h, nm.TIME_WORDS)]
    for header in [*named, *[h for h in files.columns if h not in named]]:
        column = files.columns[header]
        if len(column.texts) < len(files.frames):
            continue
        if column.numeric and increasing(column):
            unit, why, _ = nm.unit_from_header(header)
            if unit is not None and dimension_of(unit) == "time":
                return Guess({"column": header, "unit": unit}, why)
            return Guess({"column": header, "unit": "h"}, "unit not in the name: hours assumed")
        if header in named and not column.numeric and (found := timestamp_format(column)):
            fmt, why = found
            entry = {"column": header, "unit": DATETIME} | ({"format": fmt} if fmt else {})
            return Guess(entry, why)
    raise BioprocessMLError(
        "no time column found: none is named like time/elapsed/hours with increasing values "
        "or timestamps in every file"
    )


def find_batch_id(files: Files, time: str) -> Guess:
    """A column named like a batch id with one value per file (different between files), else
    the file name."""
    for header, column in files.columns.items():
        if header == time or not nm.has_word(header, nm.BATCH_WORDS):
            continue
        ids = [set(t.dropna().str.strip()) for t in column.texts]
        one_each = len(column.texts) == len(files.frames) and all(len(i) == 1 for i in ids)
        if one_each and len(set.union(*ids)) == len(ids):
            return Guess({"column": header}, "one value per file, named like a batch id")
    suffixes = {p.suffix for p in files.paths}
    suffix = re.escape(suffixes.pop()) if len(suffixes) == 1 else r"\.[^.]+"
    return Guess(
        {"filename_pattern": f"^(?P<batch_id>.+){suffix}$"},
        "no batch id column: the file name without its extension",
    )


def variable(header: str, column: Column, files: Files, online: bool) -> Guess:
    unit, why, used = nm.unit_from_header(header)
    if unit is None:
        unit, why = nm.unit_from_meaning(header)
    entry: dict[str, Any] = {"name": nm.canonical_name(header, used), "column": header}
    entry["unit"] = unit
    notes = [why]
    bounds, range_note = plausible_range(column.values, unit)
    if bounds is not None:
        entry["range"] = list(bounds)
    notes.append(range_note)
    if header in files.absent:
        entry["optional"] = True
        notes.append(f"absent from {files.absent[header]} file(s): optional")
    if online:
        role, role_note = guess_role(header, unit, column)
        if role != "measured":
            entry["role"] = role
            notes.append(role_note)
        if column.worst_missing > MISSING:
            entry["max_missing"] = min(1.0, math.ceil((column.worst_missing + 0.05) * 20) / 20)
            notes.append(f"up to {column.worst_missing:.0%} empty in a file")
    return Guess(entry, "; ".join(n for n in notes if n))


def guess_role(header: str, unit: str, column: Column) -> tuple[str, str]:
    """feed: a flow named like a feed; offgas: named like off-gas (or OUR/CER); manipulated:
    held constant through most steps (set-points of a recipe's phases); else measured."""
    flow = dimension_of(unit) in FEED_DIMENSIONS
    if flow and nm.has_word(header, nm.FEED_WORDS) and not nm.has_word(header, nm.OUTFLOW_WORDS):
        return "feed", "role: a flow named like a feed"
    if nm.has_word(header, nm.OFFGAS_WORDS):
        return "offgas", "role: named like off-gas"
    share = column.constant_share()
    if share >= SET_POINT:
        return "manipulated", f"role: unchanged in {share:.0%} of steps, a set-point"
    return "measured", ""


def choose_target(files: Files, offline: list[str], target: str | None) -> tuple[str, str]:
    """The target's header and why: the user's choice, else a sparse column named like a product."""
    if target is not None:
        if target not in files.columns:
            close = difflib.get_close_matches(target, list(files.columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BioprocessMLError(f"--target {target!r} is not a column of the files{hint}")
        if not files.columns[target].numeric:
            raise BioprocessMLError(f"--target {target!r} holds text, not numbers")
        return target, "target: from --target"
    for header in offline:
        if nm.has_word(header, nm.TARGET_WORDS):
            return header, "target guessed: a sparse column named like a product"
    if offline:
        return offline[0], "target guessed: the first sparse column, check it"
    raise BioprocessMLError(
        "no sparse column (an offline assay) to be the target: name one with --target COLUMN"
    )


def elapsed_hours(files: Files, time: Guess) -> list[np.ndarray]:
    column, unit = files.columns[time.entry["column"]], time.entry["unit"]
    if unit != DATETIME:
        return [to_canonical(n, unit) for n in column.numbers]
    out = []
    for text in column.texts:
        stamps = read_timestamps(text, time.entry.get("format"))
        out.append(((stamps - stamps.min()).dt.total_seconds() / 3600.0).to_numpy(dtype=float))
    return out


def batch_rules(files: Files, time: Guess) -> list[Guess]:
    """Half the shortest file's rows and duration; a gap allowance from the sampling steps."""
    hours = elapsed_hours(files, time)
    rows = min(len(f) for f in files.frames)
    duration = min(float(np.nanmax(h) - np.nanmin(h)) for h in hours)
    steps = np.concatenate([np.diff(np.sort(h[np.isfinite(h)])) for h in hours])
    steps = steps[steps > 0]
    out = [Guess({"min_rows": max(2, rows // 2)}, f"half the shortest file's {rows} rows")]
    if duration > 0:
        least = nice(duration / 2, up=False)
        out.append(Guess({"min_duration_h": least}, f"half the shortest file's {duration:.4g} h"))
    if len(steps):
        gap = nice(max(5 * float(np.median(steps)), 1.5 * float(steps.max())), up=True)
        note = f"readings every {float(np.median(steps)):.3g} h, largest step {steps.max():.3g} h"
        out.append(Guess({"max_gap_h": gap}, note))
    return out


def process_name(files: Files) -> str:
    """The file names' common start without trailing numbers ('ips-dev-500000' → 'ips_dev')."""
    stems = [p.stem for p in files.paths]
    common = os.path.commonprefix(stems).rstrip("-_ .0123456789")  # noqa: RUF071 (by character)
    base = common if len(common) >= 3 else files.paths[0].parent.name
    return re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "my_process"
