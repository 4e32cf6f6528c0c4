"""The validation gate: judge one arrived batch file against its dataset spec.

The expectations come from the spec (`rules.py`) and run here as one GX suite. Nothing here
raises on bad input: each problem becomes a `Check` whose reason names it with the values
observed, because the person who fixes a quarantined file reads the reason, not a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import canonical_frame
from bioprocessml.ingest import table
from bioprocessml.ingest.rules import Rule, build_rules
from bioprocessml.ingest.screen import screen
from bioprocessml.ingest.sniffing import Finding
from bioprocessml.spec import DatasetSpec

log = logging.getLogger(__name__)

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


def validate_file(
    path: Path, spec: DatasetSpec, docs_dir: Path | None = None
) -> tuple[ValidationReport, pd.DataFrame | None]:
    """Returns the report and, when ok, the canonical frame (as `dataset.load_batch` gives it).

    A file that cannot be read as a table skips GX and builds no docs: its reasons suffice.
    GX rebuilds the Data Docs site in `docs_dir` for this run only, so give each file its own."""
    path = Path(path)
    raw, findings = table.read_table(path, spec)
    checks = [to_failure(f) for f in findings if f.severity == "error"]
    warnings = [f.reason for f in findings if f.severity == "warning"]
    if raw is None:
        return ValidationReport(
            ok=False, batch_id=None, rows=0, checks=checks, warnings=warnings
        ), None
    found = table.find_batch_id(raw, path, spec)
    batch_id = found if isinstance(found, str) else None
    if isinstance(found, Finding):
        checks.append(to_failure(found))
    extra = [c for c in raw.columns if c not in spec.file_columns]
    if extra:
        warnings.append(f"extra columns not in the spec, ignored: {', '.join(map(repr, extra))}")
    frame = table.gx_frame(raw, spec)
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
    """Run the rules as one GX suite; a GX crash becomes a failed check, not an exception.

    First the screen (`screen.py`: the same rules folded into a few expectations, with GX's
    cheapest result format): most files pass it, and then every rule has passed. A file that
    fails it runs every rule with the observed values its reasons quote, through a checkpoint
    that builds the Data Docs."""
    try:
        if _passes_screen(rules, frame):
            return [
                Check(name=r.check, column=r.column, passed=True, reason=r.describe())
                for r in rules
            ]
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


def _expectations(rules: list[Rule], describe: bool = True) -> list[Any]:
    import great_expectations.expectations as gxe

    return [
        getattr(gxe, rule.kind)(**rule.kwargs, meta={"rule": i}, notes=rule.describe())
        if describe else getattr(gxe, rule.kind)(**rule.kwargs, meta={"rule": i})
        for i, rule in enumerate(rules)
    ]  # fmt: skip


def _ephemeral_context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")  # ~5 ms: a fresh one per file keeps runs apart
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _passes_screen(rules: list[Rule], frame: pd.DataFrame) -> bool:
    """Every rule passes (True), judged by GX's BOOLEAN_ONLY validation of the screen; False
    when any screen expectation fails or could not be evaluated."""
    import great_expectations as gx

    direct, stacked_rules, stacked = screen(rules, frame)
    asset = _ephemeral_context().data_sources.add_pandas("gate").add_dataframe_asset("frame")
    whole = asset.add_batch_definition_whole_dataframe("whole")
    for name, chosen, data in (("file", direct, frame), ("stacked", stacked_rules, stacked)):
        if not chosen:
            continue
        suite = gx.ExpectationSuite(name=name, expectations=_expectations(chosen, describe=False))
        batch = whole.get_batch(batch_parameters={"dataframe": data})
        result = batch.validate(suite, result_format="BOOLEAN_ONLY")
        if not all(res.success and not _raised(res) for res in result.results):
            return False
    return True


def _raised(res: Any) -> bool:
    """Did GX fail to evaluate this expectation (its exception info, flat or per metric)?"""
    info = res.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    return any(isinstance(i, dict) and i.get("raised_exception") for i in infos)


def _run_suite(
    rules: list[Rule], frame: pd.DataFrame, spec: DatasetSpec, path: Path, docs_dir: Path | None
) -> list[Any]:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    ctx = _ephemeral_context()
    asset = ctx.data_sources.add_pandas("arrivals").add_dataframe_asset(path.stem)
    # added all at once: adding one by one re-serializes the stored suite each time
    suite = ctx.suites.add(gx.ExpectationSuite(name=spec.name, expectations=_expectations(rules)))
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
    if _raised(res):
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
