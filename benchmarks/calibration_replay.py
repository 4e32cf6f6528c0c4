"""Replay the accuracy benchmark's interval calibration in seconds (issue 15).

`record` runs the benchmark's cross-validation once (dev set and simulator, as
`benchmarks/accuracy.py` does) and keeps, for every candidate row and fold, the held-out
predictions and the inputs of each `IntervalCalibration` that made them (the out-of-fold
residuals of the *training* batches). `replay` refits the calibration from those inputs
with the current `models.calibration` code and rescores the per-batch coverage, so a change
of the calibration is judged on both data sets without refitting a model. Held-out batches
never enter a calibration: they are only scored.

    .venv/bin/python benchmarks/calibration_replay.py record [--out /tmp/replay.pkl]
    .venv/bin/python benchmarks/calibration_replay.py replay [--out /tmp/replay.pkl]

A row's half-width is factor × scale(elapsed) × m, m the model's own part (a GP's spread,
the `+assays` growth with the assay's age), recovered from the recorded interval and kept.
"""

from __future__ import annotations

import argparse
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import accuracy
from devset import NORMAL, dev_features, load_folder, load_truth
from simtruth import simulate_with_truth

from bioprocessml.settings import DEFAULT_SPEC
from bioprocessml.spec import load_spec
from models.calibration import LEVEL, IntervalCalibration, elapsed_hours
from models.features import FeatureSpec

log = logging.getLogger("replay")
_fit = IntervalCalibration.fit.__func__  # type: ignore[attr-defined]


def _recording_fit(cls: Any, residuals: Any, elapsed: Any, groups: Any, spread: Any = None,
                   level: float = LEVEL, relative: Any = None) -> IntervalCalibration:  # fmt: skip
    calibration = _fit(cls, residuals, elapsed, groups, spread, level, relative)
    calibration.inputs = {  # type: ignore[attr-defined]
        "residuals": np.array(residuals), "elapsed": np.array(elapsed),
        "groups": np.array(groups), "level": level,
        "spread": None if spread is None else np.array(spread),
        "relative": None if relative is None else np.array(relative),
    }  # fmt: skip
    return calibration


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    """What replay needs of one row and fold (no histories)."""
    pred, samples = entry["pred"], entry["samples"]
    calibrations = entry["calibrations"]
    source = np.zeros(len(pred.mean), dtype=int)
    if len(calibrations) == 2:
        source = np.array([1 if m == "assays" else 0 for m in pred.mode], dtype=int)
    return {
        "mean": pred.mean, "lower": pred.lower, "upper": pred.upper, "source": source,
        "y": samples.targets, "groups": samples.groups, "fractions": samples.fractions,
        "elapsed": elapsed_hours(samples.histories),
        "calibrations": [(c.grid, c.scale, c.factor, c.inputs) for c in calibrations],
    }  # fmt: skip


def record(out: Path) -> None:
    IntervalCalibration.fit = classmethod(_recording_fit)  # type: ignore[assignment,method-assign]
    data = {
        "dev": (load_folder(NORMAL), load_truth(), dev_features()),
        "sim": (*simulate_with_truth(24, seed=2024), FeatureSpec.from_spec(load_spec(DEFAULT_SPEC))),
    }  # fmt: skip
    saved: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, (batches, truth, fs) in data.items():
        rows: dict[str, list[dict[str, Any]]] = {}
        for k in range(accuracy.FOLDS):
            test = [b for i, b in enumerate(batches) if i % accuracy.FOLDS == k]
            train = [b for i, b in enumerate(batches) if i % accuracy.FOLDS != k]
            split = accuracy.evaluate_split(train, test, truth, fs, accuracy.CANDIDATES)
            for key, entry in split.items():
                rows.setdefault(key, []).append(_row(entry))
            log.info("%s fold %d recorded", name, k + 1)
        saved[name] = rows
        out.write_bytes(pickle.dumps(saved))


def _half(row: dict[str, Any]) -> np.ndarray:
    """Half-widths of one row and fold with calibrations refitted by the current code."""
    half = row["upper"] - row["mean"]
    new = half.copy()
    for i, (grid, scale, factor, inputs) in enumerate(row["calibrations"]):
        at = row["source"] == i
        old = factor * np.interp(row["elapsed"][at], grid, scale)
        own = half[at] / np.maximum(old, 1e-300)
        refit = IntervalCalibration.fit(
            inputs["residuals"], inputs["elapsed"], inputs["groups"], inputs["spread"],
            inputs["level"], inputs["relative"],
        )  # fmt: skip
        new[at] = refit.factor * refit.std(row["elapsed"][at]) * own
    return new


def score(rows: list[dict[str, Any]]) -> dict[str, float]:
    y = np.concatenate([r["y"] for r in rows])
    mean = np.concatenate([r["mean"] for r in rows])
    groups = np.concatenate([r["groups"] for r in rows])
    half = np.concatenate([_half(r) for r in rows])
    floor = 0.0 if all(np.all(r["lower"] >= 0) for r in rows) else -np.inf
    inside = (y >= np.maximum(mean - half, floor)) & (y <= mean + half)
    per_batch = [np.mean(inside[groups == g]) for g in np.unique(groups)]
    return {"median": float(np.median(per_batch)), "pooled": float(np.mean(inside)),
            "width": float(np.mean(2 * half))}  # fmt: skip


def replay(out: Path) -> None:
    saved = pickle.loads(out.read_bytes())
    for name, rows in saved.items():
        inside = 0
        for key, folds in rows.items():
            s = score(folds)
            ok = 0.90 <= s["median"] <= 0.97
            inside += ok
            print(f"{name:4s} {key:26s} median {s['median']:.3f} pooled {s['pooled']:.3f} "
                  f"width {s['width']:.3f} {'ok' if ok else 'OUT'}")  # fmt: skip
        print(f"{name}: {inside}/{len(rows)} rows in [0.90, 0.97]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["record", "replay"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/calibration-replay.pkl"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("models.gp", "models.lstm", "accuracy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    record(args.out) if args.mode == "record" else replay(args.out)


if __name__ == "__main__":
    main()
