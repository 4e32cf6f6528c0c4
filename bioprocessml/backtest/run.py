"""A whole backtest: find the files, label them, replay them, score and write the scorecard."""

from __future__ import annotations

import csv
import logging
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bioprocessml.backtest.replay import Step, backtest_settings, replay
from bioprocessml.backtest.report import Scorecard, log_scorecard, write_scorecard
from bioprocessml.backtest.scorecard import score_step, totals
from bioprocessml.dataset import load_batch, read_raw, resolve_batch_id
from bioprocessml.errors import BioprocessMLError
from bioprocessml.serving.db import engine_for
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec, load_spec

ORDERS = ("name", "labels", "mtime")
log = logging.getLogger(__name__)


def natural_key(path: Path) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(path))]


def read_labels(path: Path | None) -> dict[str, str]:
    """A CSV with columns `batch_id,label` (label `normal` or the name of a change); the id may
    also be a file name or stem."""
    if path is None:
        return {}
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise BioprocessMLError(f"{path}: cannot read the labels ({exc.strerror})") from None
    if not rows or not {"batch_id", "label"} <= set(rows[0]):
        raise BioprocessMLError(f"{path}: the labels CSV needs the columns batch_id,label")
    return {r["batch_id"].strip(): r["label"].strip() for r in rows}


def label_keys(path: Path, spec: DatasetSpec | None) -> list[str]:
    """What a labels row may name a file by: its batch id (read as the spec says, if the file
    is readable), its file name without and with the extension."""
    keys = [path.stem, path.name]
    if spec is None:
        return keys
    try:
        return [resolve_batch_id(read_raw(path, spec), path, spec), *keys]
    except (BioprocessMLError, OSError):  # the gate will say why the file cannot be read
        return keys


def find_files(
    source: Path, labels: dict[str, str], order: str, pattern: str = "*.csv",
    skip: Path | None = None, spec: DatasetSpec | None = None,
) -> list[tuple[Path, str]]:  # fmt: skip
    """Batch files (`pattern`, but not `skip`: the labels CSV) under `source` in arrival order:
    by name (natural sort, default), by the labels CSV's row order, or by modification time;
    each with its label (looked up by batch id, file stem or name)."""
    if not source.is_dir():
        raise BioprocessMLError(f"{source}: not a folder of batch files")
    if order not in ORDERS:
        raise BioprocessMLError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
    skipped = skip.resolve() if skip is not None else None
    files = [
        p for p in source.rglob(pattern)
        if p.is_file() and not p.name.startswith(".") and p.resolve() != skipped
    ]  # fmt: skip
    if not files:
        raise BioprocessMLError(f"{source}: no batch files matching {pattern!r}")
    rank = {key: i for i, key in enumerate(labels)}
    matched = {
        p: next((k for k in label_keys(p, spec) if k in labels), None) if labels else None
        for p in files
    }
    if labels and not any(matched.values()):
        raise BioprocessMLError(
            f"none of the {len(labels)} labels names one of the {len(files)} files: a label's "
            "batch_id must be a file's batch id (as the spec reads it), or its file name"
        )
    unlabelled = [p.name for p, key in matched.items() if labels and key is None]
    if unlabelled:
        log.warning("%d of %d files have no label: %s", len(unlabelled), len(files),
                    ", ".join(sorted(unlabelled)[:5]))  # fmt: skip
    sorters: dict[str, Callable[[Path], object]] = {
        "name": natural_key,
        "mtime": lambda p: p.stat().st_mtime,
        "labels": lambda p: (rank.get(matched[p] or "", len(rank)), natural_key(p)),
    }
    ordered = sorted(files, key=sorters[order])  # type: ignore[arg-type]
    default = "normal" if not labels else ""
    return [(p, labels[key] if (key := matched[p]) else default) for p in ordered]


def run_backtest(
    base: Settings, source: Path, out: Path, labels_csv: Path | None = None, order: str = "name",
    state: Path | None = None, on_step: Callable[[Step], None] = lambda _: None,
    pattern: str = "*.csv",
) -> Scorecard:  # fmt: skip
    """Replay `source` into a fresh state folder (a temporary one unless `state` is given), then
    write the scorecard into `out` and log it to the user's MLflow."""
    labels = read_labels(labels_csv)
    spec = load_spec(base.spec_path)
    files = find_files(source, labels, order, pattern, labels_csv, spec)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bioprocessml-backtest-") as tmp:
        folder = state or Path(tmp)
        settings = backtest_settings(base, folder, base.spec_path.resolve())
        steps = replay(settings, files, on_step)
        scores = []
        for (path, _), step in zip(files, steps, strict=True):
            try:
                batch = load_batch(path, spec)
            except BioprocessMLError:
                batch = None
            scores.append(score_step(step, batch, spec.target))
        summary = totals(scores, steps, engine_for(settings.prediction_log_url))
    card = Scorecard(
        source=str(source), spec=str(base.spec_path), seconds=time.monotonic() - started,
        batches=scores, totals=summary,
    )  # fmt: skip
    written = write_scorecard(card, out)
    log_scorecard(base, card, written)
    return card
