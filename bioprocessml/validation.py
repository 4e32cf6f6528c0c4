"""The validation gate: judge one arrived batch file against its dataset spec.

Every Great Expectations expectation is generated from the `DatasetSpec`, so a plant with other
columns, units or rules needs a new spec, not new code. Nothing here raises on bad input: each
problem becomes a `Check` whose reason names it with the values observed, because the person
who fixes a quarantined file reads the reason, not a traceback.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from bioprocessml import sniffing
from bioprocessml.dataset import canonical_frame
from bioprocessml.sniffing import ELAPSED, SAMPLE, STEP, Finding, text_column
from bioprocessml.spec import DatasetSpec, VariableSpec
from bioprocessml.units import DATETIME

log = logging.getLogger(__name__)

Result = dict[str, Any]
BETWEEN = "ExpectColumnValuesToBeBetween"
NOT_NULL = "ExpectColumnValuesToNotBeNull"
INDEX = "DefaultSiteIndexBuilder"


class Check(BaseModel):
    """One judgement about the file; `column` is the user's header when it is about one column."""

    name: str
    column: str | None = None
    passed: bool
    reason: str
    severity: Literal["error", "warning"] = "error"


class ValidationReport(BaseModel):
    """The gate's verdict on one file: `ok` iff no error-severity check failed."""

    ok: bool
    batch_id: str | None
    rows: int
    checks: list[Check]
    warnings: list[str] = []
    data_docs: Path | None = None

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line per failure (or one line saying it passed), for logs and quarantine notes."""
        if not self.failures:
            return f"ok: batch {self.batch_id}, {self.rows} rows"
        return "\n".join(
            f"{'warning: ' if c.severity == 'warning' else ''}{c.name}: {c.reason}"
            for c in self.failures
        )


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


def validate_file(
    path: Path, spec: DatasetSpec, docs_dir: Path | None = None
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Returns the report and, when ok, the canonical frame (as `dataset.load_batch` gives it).

    A file that cannot be read as a table skips GX and builds no docs: its reasons suffice.
    GX rebuilds the Data Docs site in `docs_dir` for this run only, so give each file its own."""
    path = Path(path)
    raw, findings = sniffing.read_table(path, spec)
    checks = [to_failure(f) for f in findings if f.severity == "error"]
    warnings = [f.reason for f in findings if f.severity == "warning"]
    if raw is None:
        return ValidationReport(
            ok=False, batch_id=None, rows=0, checks=checks, warnings=warnings
        ), None
    found = sniffing.find_batch_id(raw, path, spec)
    batch_id = found if isinstance(found, str) else None
    if isinstance(found, Finding):
        checks.append(to_failure(found))
    extra = [c for c in raw.columns if c not in spec.file_columns]
    if extra:
        warnings.append(f"extra columns not in the spec, ignored: {', '.join(map(repr, extra))}")
    frame = sniffing.gx_frame(raw, spec)
    checks += run_expectations(build_rules(spec, frame), frame, spec, path, docs_dir)
    ok = not any(c.severity == "error" and not c.passed for c in checks)
    index = docs_dir / "index.html" if docs_dir is not None else None
    report = ValidationReport(
        ok=ok, batch_id=batch_id, rows=len(raw), checks=checks, warnings=warnings,
        data_docs=index if index is not None and index.is_file() else None,
    )  # fmt: skip
    if not ok or batch_id is None:
        return report, None
    return report, canonical_frame(raw, spec, batch_id)


def to_failure(finding: Finding) -> Check:
    return Check(name=finding.name, column=finding.column, passed=False, reason=finding.reason)


def run_expectations(
    rules: list[Rule], frame: pd.DataFrame, spec: DatasetSpec, path: Path, docs_dir: Path | None
) -> list[Check]:
    """Run the rules as one GX suite; a GX crash becomes a failed check, not an exception."""
    try:
        results = _run_suite(rules, frame, spec, path, docs_dir)
    except Exception as exc:
        log.exception("Great Expectations failed on %s", path)
        reason = f"the expectation suite could not run: {type(exc).__name__}: {exc}"
        return [Check(name="validation", passed=False, reason=reason)]
    checks = {}
    for res in results:
        index = int(res.expectation_config.meta["rule"])
        checks[index] = to_check(rules[index], res)
    return [checks[i] for i in sorted(checks)]  # GX returns results in no particular order


def _run_suite(
    rules: list[Rule], frame: pd.DataFrame, spec: DatasetSpec, path: Path, docs_dir: Path | None
) -> list[Any]:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")  # ~5 ms: a fresh one per file keeps runs apart
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = ctx.data_sources.add_pandas("arrivals").add_dataframe_asset(path.stem)
    expectations = [
        getattr(gxe, rule.kind)(**rule.kwargs, meta={"rule": i}, notes=rule.describe())
        for i, rule in enumerate(rules)
    ]  # added all at once: adding one by one re-serializes the stored suite each time
    suite = ctx.suites.add(gx.ExpectationSuite(name=spec.name, expectations=expectations))
    definition = gx.ValidationDefinition(
        name=path.name, data=asset.add_batch_definition_whole_dataframe("whole"), suite=suite
    )
    definition = ctx.validation_definitions.add(definition)
    actions: list[Any] = []
    if docs_dir is not None:
        backend = {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}
        site: Any = {"class_name": "SiteBuilder", "store_backend": backend}
        site |= {"site_index_builder": {"class_name": INDEX}, "show_how_to_buttons": False}
        ctx.add_data_docs_site("batch", site)
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["batch"]))
    checkpoint = gx.Checkpoint(
        name="gate", validation_definitions=[definition], actions=actions, result_format="SUMMARY"
    )
    run = ctx.checkpoints.add(checkpoint).run(
        batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=path.name)
    )
    return [r for vr in run.run_results.values() for r in vr.results]


def to_check(rule: Rule, res: Any) -> Check:
    """A GX result as a Check with a plain sentence; odd results still yield a sentence."""
    info = res.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    raised = [i for i in infos if isinstance(i, dict) and i.get("raised_exception")]
    if raised:
        reason = f"could not check that {rule.describe()}: {raised[0].get('exception_message')}"
        return Check(name=rule.check, column=rule.column, passed=False, reason=reason)
    if res.success:
        return Check(name=rule.check, column=rule.column, passed=True, reason=rule.describe())
    try:
        reason = rule.explain(dict(res.result))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        log.warning("no wording for %s (%s): %s", rule.check, exc, res.result)
        reason = f"expected {rule.describe()}; GX observed {dict(res.result)}"
    return Check(name=rule.check, column=rule.column, passed=False, reason=reason)


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
    "time_missing": "{col}: {n} of {rows} time values empty or unreadable",
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


def time_rules(spec: DatasetSpec, frame: pd.DataFrame) -> list[Rule]:
    """Time must be readable, in order, unique and long enough (all in elapsed hours); no long
    gap between online readings; offline samples inside the online readings' span."""
    if ELAPSED not in frame.columns:
        return []
    col, least, gap = spec.time.column, spec.rules.min_duration_h, spec.rules.max_gap_h
    rules = [numeric_rule(col, spec.csv.decimal)] if spec.time.unit != DATETIME else []
    elapsed = {"column": ELAPSED}
    rules += [
        Rule("time_missing", col, NOT_NULL, elapsed),
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
    online = frame.loc[sniffing.has_value(frame, spec.online), ELAPSED]
    if online.notna().any():
        low, high = float(online.min()), float(online.max())
        expect = {"column": SAMPLE, "min_value": low, "max_value": high}
        rules.append(Rule("offline_window", None, BETWEEN, expect, {"span": f"{low:g}–{high:g} h"}))
    return rules
