"""The validation gate: every broken file fails with a reason that names its problem in words,
good files pass with the same canonical frame `load_batch` gives, and nothing raises."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioprocessml.dataset import load_batch, write_batch
from bioprocessml.ingest.validation import ValidationReport, validate_file
from bioprocessml.simulation.faults import FAULTS
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import DatasetSpec
from tests.conftest import TINY

Outcome = tuple[ValidationReport, pd.DataFrame | None]

# Words each fault kind's summary must contain (the default spec: fedbatch.yaml).
FAULT_WORDS = {
    "missing-target": ["required column 'titer_gL'", "missing"],
    "target-mg-per-l": ["titer_gL", "outside the plausible range 0–30 g/L", "observed"],
    "time-out-of-order": ["time_h", "time goes backwards"],
    "duplicate-timestamps": ["time_h", "duplicate timestamps"],
    "nan-burst": ["DO_pct", "readings missing", "more than the 5% allowed"],
    "negative-concentration": ["biomass_gL", "negative concentration"],
    "impossible-temperature": ["temperature_C", "outside the plausible range 20–45 degC", "250"],
    "volume-out-of-bounds": ["volume_L", "volume outside the vessel's bounds 1–10 L"],
    "empty-file": ["empty file (0 bytes)"],
    "header-only": ["header only", "no data rows"],
    "binary-file": ["binary content"],
    "semicolon-decimal-comma": ["delimiter ';' with decimal ','", "the spec expects ',' and '.'"],
    "truncated": ["file ends mid-line", "truncated"],
    "non-utf8-encoding": ["encoding utf-16", "expects utf-8"],
    "too-few-rows": ["too few rows: 6", "at least 50", "batch too short"],
    "text-in-numeric-column": ["pH", "not numbers", "'ERR'"],
    "offline-after-end": ["offline sample", "outside the online readings' time span", "248"],
    "mixed-batch-ids": ["several batch ids"],
}
# Faults caught while reading the file: GX never runs on them.
UNREADABLE = {"empty-file", "header-only", "binary-file", "semicolon-decimal-comma", "truncated",
              "non-utf8-encoding"}  # fmt: skip


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, spec: DatasetSpec) -> dict[str, Path]:
    """One file per fault kind plus two normal batches, shared by the whole module."""
    root = tmp_path_factory.mktemp("arrivals")
    corrupt = write_simulated(root / "corrupt", spec, len(FAULTS), "corrupt", seed=11, cfg=TINY)
    files = {p.stem.split("-", 1)[1]: p for p in corrupt}
    normal = write_simulated(root / "normal", spec, 2, "normal", seed=11, cfg=TINY)
    return files | {f"normal-{i}": p for i, p in enumerate(normal)}


@pytest.fixture(scope="module")
def outcomes(corpus: dict[str, Path], spec: DatasetSpec) -> dict[str, Outcome]:
    return {kind: validate_file(path, spec) for kind, path in corpus.items()}


def test_fault_words_cover_every_fault_kind() -> None:
    assert list(FAULT_WORDS) == list(FAULTS)


@pytest.mark.parametrize("kind", list(FAULTS))
def test_every_fault_fails_with_a_reason_naming_it(kind: str, outcomes: dict[str, Outcome]) -> None:
    report, frame = outcomes[kind]
    summary = report.summary()
    assert not report.ok and frame is None
    assert report.failures and len(summary.splitlines()) == len(report.failures)
    for words in FAULT_WORDS[kind]:
        assert words in summary, f"{kind}: {words!r} not in {summary!r}"
    assert (report.rows == 0) == (kind in UNREADABLE), "unreadable files skip GX"


def test_reasons_carry_column_and_observed_values(outcomes: dict[str, Outcome]) -> None:
    report, _ = outcomes["target-mg-per-l"]
    (check,) = [c for c in report.failures if c.name == "range"]
    assert check.column == "titer_gL" and check.severity == "error" and not check.passed
    observed_max = float(re.search(r"observed [-\d.e+]+–([\d.e+]+)\)", check.reason).group(1))
    assert observed_max > 30, check.reason
    passed = [c for c in report.checks if c.passed]
    assert any(c.name == "time_increasing" for c in passed), "passed checks are listed too"
    assert report.batch_id == "C002" and report.rows > 100


def test_normal_batches_pass_with_the_canonical_frame(
    corpus: dict[str, Path], outcomes: dict[str, Outcome], spec: DatasetSpec
) -> None:
    for i in range(2):
        report, frame = outcomes[f"normal-{i}"]
        assert report.ok, report.summary()
        assert report.failures == [] and report.warnings == [] and report.data_docs is None
        assert report.batch_id == corpus[f"normal-{i}"].stem
        assert report.summary().startswith("ok")
        assert frame is not None and report.rows == len(frame)
        pd.testing.assert_frame_equal(frame, load_batch(corpus[f"normal-{i}"], spec))


def test_second_spec_with_semicolon_and_decimal_comma_passes(
    tmp_path: Path, plant_spec: DatasetSpec
) -> None:
    for path in write_simulated(tmp_path, plant_spec, 2, "normal", seed=5, cfg=TINY):
        report, frame = validate_file(path, plant_spec)
        assert report.ok, report.summary()
        assert report.batch_id == path.stem, "batch id from the file name pattern"
        assert frame is not None
        pd.testing.assert_frame_equal(frame, load_batch(path, plant_spec))


def test_datetime_time_column_passes(tmp_path: Path, spec: DatasetSpec) -> None:
    stamped = spec.model_copy(update={"time": spec.time.model_copy(update={"unit": "datetime"})})
    path = write_batch(simulate(1, "normal", seed=3, cfg=TINY)[0], tmp_path / "D1.csv", stamped)
    report, frame = validate_file(path, stamped)
    assert report.ok, report.summary()
    assert frame is not None
    pd.testing.assert_frame_equal(frame, load_batch(path, stamped))


def test_extra_column_is_a_warning(
    tmp_path: Path, corpus: dict[str, Path], spec: DatasetSpec
) -> None:
    lines = corpus["normal-0"].read_text().splitlines()
    path = tmp_path / "with-extra.csv"
    path.write_text("\n".join([lines[0] + ",operator"] + [f"{x},jo" for x in lines[1:]]) + "\n")
    report, frame = validate_file(path, spec)
    assert report.ok and frame is not None, report.summary()
    assert len(report.warnings) == 1 and "'operator'" in report.warnings[0]
    pd.testing.assert_frame_equal(frame, load_batch(path, spec))


def _good_text(corpus: dict[str, Path]) -> str:
    return corpus["normal-1"].read_text()


def _time_column_empty(text: str) -> bytes:
    rows = [line.split(",") for line in text.splitlines()]
    for row in rows[1:]:
        row[1] = ""
    return ("\n".join(",".join(row) for row in rows) + "\n").encode()


def _extra_field(text: str) -> bytes:
    lines = text.splitlines()
    lines[30] += ",surplus"
    return ("\n".join(lines) + "\n").encode()


HAND_MADE = {
    "header-only-crlf": (lambda t: (t.splitlines()[0] + "\r\n").encode(), ["header only"]),
    "json": (lambda t: b'{"batch_id": "B1", "rows": [{"time_h": 0}]}\n', ["JSON"]),
    "time-all-empty": (_time_column_empty, ["time_h: ", "time values empty or unreadable"]),
    "latin-1-header": (
        lambda t: t.replace("temperature_C", "temperature_°C").encode("latin-1"),
        ["encoding", "expects utf-8", "byte 0xb0 on line 1"],
    ),
    "utf-16-no-bom": (lambda t: t.encode("utf-16-le"), ["utf-16", "expects utf-8"]),
    "random-bytes": (
        lambda t: np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes(),
        ["binary content"],
    ),
    "xlsx": (lambda t: b"PK\x03\x04" + bytes(200), ["ZIP archive"]),
    "whitespace": (lambda t: b"  \n\n \r\n", ["only whitespace"]),
    "unicode-line-breaks": (lambda t: "\u0085 \u2028\n".encode(), ["only whitespace"]),
    "surplus-field": (_extra_field, ["not a readable CSV", "Expected 16 fields"]),
}


@pytest.mark.parametrize("name", list(HAND_MADE))
def test_hand_made_broken_files(
    name: str, tmp_path: Path, corpus: dict[str, Path], spec: DatasetSpec
) -> None:
    make, words = HAND_MADE[name]
    path = tmp_path / f"H001-{name}.csv"
    path.write_bytes(make(_good_text(corpus)))
    report, frame = validate_file(path, spec)
    assert not report.ok and frame is None
    for word in words:
        assert word in report.summary(), f"{name}: {word!r} not in {report.summary()!r}"


def test_missing_file_is_a_reason_not_an_exception(tmp_path: Path, spec: DatasetSpec) -> None:
    report, frame = validate_file(tmp_path / "gone.csv", spec)
    assert not report.ok and frame is None and "cannot read gone.csv" in report.summary()


def test_unterminated_last_line_is_only_a_warning(
    tmp_path: Path, corpus: dict[str, Path], spec: DatasetSpec
) -> None:
    path = tmp_path / "N009.csv"
    path.write_text(_good_text(corpus).rstrip("\n"))
    report, frame = validate_file(path, spec)
    assert report.ok and frame is not None, report.summary()
    assert report.warnings == ["file does not end with a newline"]


def _visible_text(page: Path) -> str:
    text = re.sub(r"<(script|style).*?</\1>", " ", page.read_text(), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_data_docs_show_the_failing_expectation(
    tmp_path: Path, corpus: dict[str, Path], spec: DatasetSpec
) -> None:
    report, _ = validate_file(corpus["target-mg-per-l"], spec, docs_dir=tmp_path / "docs")
    assert report.data_docs == tmp_path / "docs" / "index.html" and report.data_docs.is_file()
    (page,) = (tmp_path / "docs" / "validations").rglob("*.html")
    text = _visible_text(page)
    section = text[text.index("titer_gL Status") :]
    assert "less than or equal to 30.0" in section and "unexpected values found" in section
    assert "Status: Failed" in text


def test_unreadable_file_builds_no_docs(
    tmp_path: Path, corpus: dict[str, Path], spec: DatasetSpec
) -> None:
    report, _ = validate_file(corpus["empty-file"], spec, docs_dir=tmp_path / "docs")
    assert report.data_docs is None and not (tmp_path / "docs").exists()


def test_great_expectations_is_not_imported_with_the_module() -> None:
    code = "import sys, bioprocessml.ingest.validation; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
