"""The expectations a dataset spec implies, as GX-free rules with their words.

Every Great Expectations expectation is generated from the `DatasetSpec`, so a plant with other
columns, units or rules needs a new spec, not new code. A rule carries what it expects and why it
failed in plain words, filled with the values GX observed.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bioprocessml.ingest import table
from bioprocessml.ingest.table import ELAPSED, SAMPLE, STEP, text_column
from bioprocessml.spec import DatasetSpec, VariableSpec
from bioprocessml.units import DATETIME

Result = dict[str, Any]
BETWEEN = "ExpectColumnValuesToBeBetween"
NOT_NULL = "ExpectColumnValuesToNotBeNull"


@dataclass(frozen=True)
class Rule:
    """A GX expectation by class name and kwargs, so rules build without importing GX; its
    words come from EXPECTS/FAILED[check], filled with `facts` and GX's observed values."""

    check: str
    column: str | None
    kind: str
    kwargs: dict[str, Any]
    facts: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return EXPECTS[self.check].format(col=self.column, **self.facts)

    def explain(self, result: Result) -> str:
        return FAILED[self.check].format(col=self.column, **self.facts, **result_facts(result))


def format_value(value: Any) -> str:
    if not isinstance(value, numbers.Real):
        return "no" if value is None else repr(value)
    return "no" if math.isnan(value) else f"{float(value):g}"


def result_facts(result: Result) -> dict[str, Any]:
    """The observed numbers a failure sentence may quote, from a GX SUMMARY result."""
    rows = int(result.get("element_count") or 0)
    seen = list(dict.fromkeys(result.get("partial_unexpected_list") or []))[:3]
    return {
        "n": int(result.get("unexpected_count") or 0),
        "rows": rows,
        "total": rows - int(result.get("missing_count") or 0),
        "pct": float(result.get("unexpected_percent") or 0.0),
        "examples": ", ".join(format_value(v) for v in seen),
        "observed": format_value(result.get("observed_value")),
    }


# What each check expects, and why it failed, in words: filled with `col`, the rule's facts and
# from GX's result n (unexpected), rows, total (non-null), pct, examples and observed.
EXPECTS = {
    "required_columns": "column {col!r} ({label}) is present",
    "numeric": "{col} holds numbers",
    "range": "{col} within the plausible range {bounds}",
    "volume": "{col} within the vessel's volume bounds {bounds}",
    "negative": "{col} is not negative",
    "missing": "at most {allowed} of {col} missing",
    "target": "the target {col} has values",
    "time_missing": "every row has a time",
    "time_increasing": "{col} never goes backwards",
    "time_duplicates": "{col} has no duplicate timestamps",
    "duration": "the batch covers at least {least} h",
    "time_gap": "no gap over {gap} h between online readings",
    "offline_window": "offline samples within the online readings' span {span}",
    "rows": "at least {least} rows",
}


FAILED = {
    "required_columns": "required column {col!r} ({label}) is missing",
    "numeric": "{col}: {n} values are not numbers (e.g. {examples})",
    "range": "{col}: {n} of {total} values outside the plausible range {bounds} (observed {span})",
    "volume": "{col}: volume outside the vessel's bounds {bounds} in {n} of {total} readings "
    "(observed {span} {unit})",
    "negative": "{col}: {n} negative concentration values (lowest {lowest} {unit})",
    "missing": "{col}: {n} of {rows} readings missing ({pct:.0f}%), more than the {allowed} allowed",
    "target": "{col}: no values of the target (one sample at least)",
    "time_missing": "{col}: {n} of {rows} time values empty or unreadable{hint}",
    "time_increasing": "{col}: time goes backwards {n} time(s) (e.g. back to {examples} h after start)",
    "time_duplicates": "{col}: duplicate timestamps: {n} rows share their time with another row "
    "(e.g. {examples} h after start)",
    "duration": "batch too short: {observed} h of data, the spec needs at least {least} h",
    "time_gap": "{col}: {n} gap(s) between online readings longer than {gap} h (largest {largest} h)",
    "offline_window": "{n} offline sample(s) outside the online readings' time span {span} "
    "(at {examples} h after start)",
    "rows": "too few rows: {observed}, the spec needs at least {least}",
}


def build_rules(spec: DatasetSpec, frame: pd.DataFrame) -> list[Rule]:
    """Every expectation the spec implies, for the columns this file has."""
    rules = [
        Rule("required_columns", col, "ExpectColumnToExist", {"column": col}, {"label": label})
        for col, label in required_columns(spec)
    ]
    for var in spec.variables:
        if var.column in frame.columns:
            rules += variable_rules(var, spec, frame[var.column])
    least = {"least": str(spec.rules.min_rows)}
    rows = Rule(
        "rows", None, "ExpectTableRowCountToBeBetween", {"min_value": spec.rules.min_rows}, least
    )
    return [*rules, *time_rules(spec, frame), rows]


def required_columns(spec: DatasetSpec) -> list[tuple[str, str]]:
    """(header, what it holds) for every column the spec does not mark optional."""
    head = [(spec.batch_id.column, "batch id")] if spec.batch_id.column else []
    return [
        *head,
        (spec.time.column, "time"),
        *[(v.column, f"{v.name}, {v.unit}") for v in spec.variables if not v.optional],
        *[(m.column, m.name) for m in spec.metadata if not m.optional],
    ]


def numeric_rule(column: str, decimal: str) -> Rule:
    """Numbers as `dataset.to_number` parses them (except inf, which no sensor reports)."""
    point = "[.,]" if decimal == "," else r"\."
    regex = rf"^\s*[+-]?(?:[0-9]+(?:{point}[0-9]*)?|{point}[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$"
    expect = {"column": text_column(column), "regex": regex}
    return Rule("numeric", column, "ExpectColumnValuesToMatchRegex", expect)


def variable_rules(var: VariableSpec, spec: DatasetSpec, values: pd.Series) -> list[Rule]:
    """Numbers, plausible range (own wording for volume), no negative concentrations, few
    missing online readings, and a target with at least one sample."""
    low, high = var.range or (math.nan, math.nan)
    facts = {
        "unit": var.unit, "bounds": f"{low:g}–{high:g} {var.unit}", "lowest": f"{values.min():g}",
        "span": f"{values.min():g}–{values.max():g}", "allowed": f"{var.max_missing:.0%}",
    }  # fmt: skip
    col = {"column": var.column}
    rules = [numeric_rule(var.column, spec.csv.decimal)]
    if var.range is not None:
        check = "volume" if var.dimension == "volume" else "range"
        rules.append(
            Rule(check, var.column, BETWEEN, col | {"min_value": low, "max_value": high}, facts)
        )
    if var.dimension == "concentration":
        rules.append(Rule("negative", var.column, BETWEEN, col | {"min_value": 0}, facts))
    if var in spec.online and var.max_missing < 1:
        mostly = {"column": text_column(var.column), "mostly": 1 - var.max_missing}
        rules.append(Rule("missing", var.column, NOT_NULL, mostly, facts))
    if var.name == spec.target:
        count = "ExpectColumnUniqueValueCountToBeBetween"
        rules.append(Rule("target", var.column, count, col | {"min_value": 1}, facts))
    return rules


def timestamp_hint(spec: DatasetSpec) -> str:
    """How timestamps are read, for a reason that says some were not."""
    if spec.time.unit != DATETIME:
        return ""
    if spec.time.format:
        return f" (read as {spec.time.format}, the spec's time.format)"
    return (" (timestamps are read as ISO 8601, e.g. 2026-03-04T08:00:00Z, or by the one common "
            "pattern that reads them all; give the spec a time.format such as '%d/%m/%Y %H:%M' "
            "when two patterns read them differently)")  # fmt: skip


def time_rules(spec: DatasetSpec, frame: pd.DataFrame) -> list[Rule]:
    """Time must be readable, in order, unique and long enough (all in elapsed hours); no long
    gap between online readings; offline samples inside the online readings' span."""
    if ELAPSED not in frame.columns:
        return []
    col, least, gap = spec.time.column, spec.rules.min_duration_h, spec.rules.max_gap_h
    rules = [numeric_rule(col, spec.csv.decimal)] if spec.time.unit != DATETIME else []
    elapsed = {"column": ELAPSED}
    rules += [
        Rule("time_missing", col, NOT_NULL, elapsed, {"hint": timestamp_hint(spec)}),
        Rule("time_increasing", col, "ExpectColumnValuesToBeIncreasing", elapsed),
        Rule("time_duplicates", col, "ExpectColumnValuesToBeUnique", elapsed),
    ]
    if frame[ELAPSED].notna().any():  # else time_missing has said it all
        facts = {"least": f"{least:g}"}
        expect = elapsed | {"min_value": least}
        rules.append(Rule("duration", col, "ExpectColumnMaxToBeBetween", expect, facts))
    if gap is not None:
        facts = {"gap": f"{gap:g}", "largest": format_value(frame[STEP].max())}
        rules.append(Rule("time_gap", col, BETWEEN, {"column": STEP, "max_value": gap}, facts))
    online = frame.loc[table.has_value(frame, spec.online), ELAPSED]
    if online.notna().any():
        low, high = float(online.min()), float(online.max())
        expect = {"column": SAMPLE, "min_value": low, "max_value": high}
        rules.append(Rule("offline_window", None, BETWEEN, expect, {"span": f"{low:g}–{high:g} h"}))
    return rules
