"""Properties of the file gate (hypothesis, 200 examples each): whatever bytes arrive, the file
ends accepted, quarantined with a reason, or recognised as a duplicate of one so filed; nothing
raises and nothing is lost."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bioprocessml.ingest.arrival import ingest_file
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.ingest.files import sha256_of
from bioprocessml.ingest.validation import validate_file
from bioprocessml.settings import DEFAULT_SPEC, Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import load_spec
from tests.conftest import TINY

pytestmark = pytest.mark.data
EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
SPEC = load_spec(DEFAULT_SPEC)
ROOT = Path(tempfile.mkdtemp(prefix="gate-properties-"))
GATE = Settings(state_dir=ROOT / "state", data_dir=ROOT / "data").prepare()
NAMES = itertools.count()
VALID = write_simulated(ROOT / "valid", SPEC, 1, "normal", seed=11, cfg=TINY)[0].read_text()

# Bytes that reach every layer: raw noise, text, and CSV-like text with the spec's header.
header = VALID.splitlines()[0]
csv_like = st.lists(st.text(alphabet=",.-0123456789eE naN\t;", max_size=60), max_size=8).map(
    lambda rows: "\n".join([header, *rows]) + "\n"
)
arbitrary = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    csv_like.map(str.encode),
    st.sampled_from(["utf-8", "utf-16", "latin-1"]).flatmap(
        lambda enc: csv_like.map(lambda t: t.encode(enc, errors="replace"))
    ),
)


@EXAMPLES
@given(data=arbitrary)
@example(data="\u0085".encode())  # a line break only Unicode knows: once crashed the sniffer
def test_any_bytes_are_filed_with_a_reason_never_lost(data: bytes) -> None:
    name = f"arrival-{next(NAMES)}.csv"
    (GATE.incoming_dir / name).write_bytes(data)
    result = ingest_file(name, GATE, SPEC)
    assert result.verdict in {"accepted", "quarantined", "duplicate"}, result
    assert not (GATE.incoming_dir / name).exists(), "the file left incoming/ only once filed"
    [entry] = [e for e in Catalogue(GATE.data_dir / "catalogue.db").entries() if e.file == name]
    assert entry.sha256 == sha256_of(data)
    if result.verdict == "quarantined":
        assert result.reasons and all(r.strip() for r in result.reasons)
        assert (GATE.data_dir / str(result.location) / name).read_bytes() == data, "bytes kept"
    if result.verdict == "duplicate":
        assert result.location, "the duplicate names where the first copy is"


def mutate(text: str, cut: int, row: int, cell: int, junk: str, how: str) -> str:
    lines = text.splitlines()
    row = 1 + row % max(len(lines) - 1, 1)
    if how == "truncate":
        return text[: cut % len(text)]
    if how == "drop_row":
        return "\n".join(lines[:row] + lines[row + 1 :]) + "\n"
    if how == "swap_rows":
        other = 1 + (row * 7) % max(len(lines) - 1, 1)
        lines[row], lines[other] = lines[other], lines[row]
        return "\n".join(lines) + "\n"
    cells = lines[row].split(",")
    cells[cell % len(cells)] = junk
    lines[row] = ",".join(cells)
    return "\n".join(lines) + "\n"


@EXAMPLES
@given(
    cut=st.integers(0, 10**6), row=st.integers(0, 10**4), cell=st.integers(0, 100),
    junk=st.text(max_size=12).filter(lambda s: "\n" not in s and "\r" not in s),
    how=st.sampled_from(["truncate", "drop_row", "swap_rows", "cell"]),
)  # fmt: skip
def test_validation_of_a_damaged_batch_never_raises(
    cut: int, row: int, cell: int, junk: str, how: str
) -> None:
    path = ROOT / "damaged" / f"{next(NAMES)}.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(mutate(VALID, cut, row, cell, junk, how))
    report, frame = validate_file(path, SPEC)
    assert (frame is not None) == report.ok
    assert report.ok or all(c.reason.strip() for c in report.failures)


@pytest.mark.parametrize(
    ("how", "junk"),
    [("cell", j) for j in ["", "-1", "1e9", "abc", "nan", "-0.0001", "999999", "inf", "1.5.2"]]
    + [("drop_row", ""), ("swap_rows", ""), ("keep", "")],
)
def test_screen_passes_exactly_when_every_rule_passes(how: str, junk: str) -> None:
    """The fast screen (rules folded into a few expectations) may never pass a file that one of
    the spec's rules fails, nor fail one that they all pass."""
    from bioprocessml.ingest import table, validation
    from bioprocessml.ingest.rules import build_rules

    path = ROOT / "screen" / f"{next(NAMES)}.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(VALID if how == "keep" else mutate(VALID, 5000, 17, 4, junk, how))
    raw, _ = table.read_table(path, SPEC)
    assert raw is not None
    frame = table.gx_frame(raw, SPEC)
    rules = build_rules(SPEC, frame)
    every = validation._run_suite(rules, frame, SPEC, path, None)
    assert validation._passes_screen(rules, frame) == (
        len(every) == len(rules) and all(r.success for r in every)
    )
