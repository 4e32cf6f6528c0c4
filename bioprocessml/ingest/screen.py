"""The gate's fast screen: the spec's rules folded into a few GX expectations over one stacked
frame, so a good file is judged in a handful of expectations instead of one per column and rule
(GX spends ~3.5 ms of bookkeeping per expectation; a 35-column spec has ~130 rules).

The screen is exact in one direction: it passes only if every rule would pass. Column presence
becomes one set check; every `numeric` rule (same pattern) one regex over all their cells; every
plain between-rule one pair of comparisons of each value with its own bounds, stacked; the rest
run as they are. A file the screen fails is judged rule by rule (with its reasons and Data Docs).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bioprocessml.ingest.rules import BETWEEN, Rule

VALUE, LOW, HIGH, TEXT = "[screen] value", "[screen] low", "[screen] high", "[screen] text"
BOUNDS = {"column", "min_value", "max_value"}


def foldable_between(rule: Rule) -> bool:
    return rule.kind == BETWEEN and set(rule.kwargs) <= BOUNDS and "column" in rule.kwargs


Screen = tuple[list[Rule], list[Rule], pd.DataFrame]


def screen(rules: list[Rule], frame: pd.DataFrame) -> Screen:
    """(rules for the file's frame, rules for the stacked frame, the stacked frame)."""
    exists = [r.kwargs["column"] for r in rules if r.kind == "ExpectColumnToExist"]
    regexes = {r.kwargs["regex"] for r in rules if r.check == "numeric"}
    numeric = [r for r in rules if r.check == "numeric" and len(regexes) == 1]
    between = [r for r in rules if foldable_between(r)]
    folded = {id(r) for r in numeric + between} | {
        id(r) for r in rules if r.kind == "ExpectColumnToExist"
    }
    direct = [r for r in rules if id(r) not in folded]
    if exists:
        direct.append(Rule("screen", None, "ExpectTableColumnsToMatchSet",
                           {"column_set": exists, "exact_match": False}))  # fmt: skip
    stacked_rules, parts = [], []
    if numeric:
        cells = [frame[r.kwargs["column"]] for r in numeric if r.kwargs["column"] in frame]
        text = pd.concat(cells, ignore_index=True) if cells else pd.Series([], dtype=object)
        parts.append(pd.DataFrame({TEXT: text}))
        stacked_rules.append(Rule("screen", None, "ExpectColumnValuesToMatchRegex",
                                  {"column": TEXT, "regex": regexes.pop()}))  # fmt: skip
    if between:
        parts.append(_stacked_bounds(between, frame))
        for a, b in ((VALUE, LOW), (HIGH, VALUE)):
            kwargs: dict[str, Any] = {"column_A": a, "column_B": b, "or_equal": True,
                                      "ignore_row_if": "either_value_is_missing"}  # fmt: skip
            stacked_rules.append(
                Rule("screen", None, "ExpectColumnPairValuesAToBeGreaterThanB", kwargs)
            )
    stacked = pd.concat(parts, axis=1) if parts else pd.DataFrame({TEXT: []})
    return direct, stacked_rules, stacked


def _stacked_bounds(rules: list[Rule], frame: pd.DataFrame) -> pd.DataFrame:
    """Each judged value beside the bounds of its rule (±inf where a rule has none)."""
    blocks = []
    for rule in rules:
        column = rule.kwargs["column"]
        if column not in frame:
            continue  # the column check fails the screen
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        low = rule.kwargs.get("min_value")
        high = rule.kwargs.get("max_value")
        blocks.append(pd.DataFrame({
            VALUE: values.to_numpy(),
            LOW: -math.inf if low is None else float(low),
            HIGH: math.inf if high is None else float(high),
        }))  # fmt: skip
    if not blocks:
        return pd.DataFrame({VALUE: [], LOW: [], HIGH: []})
    return pd.concat(blocks, ignore_index=True)
