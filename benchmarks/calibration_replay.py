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
    .venv/bin/python benchmarks/calibration_replay.py odds [--out /tmp/replay.pkl]

`odds` asks how much the band check owes to *which* dozen training batches a calibration saw:
it redraws each fold's training batches with replacement (a bootstrap over batches: another
dozen of the same kind), refits every calibration of that fold from the drawn batches'
residuals, and rescores the same held-out predictions. It reports, per row, how often the
per-batch median coverage lands in [0.90, 0.97], and how often every row of a data set does
at once (the Done-when item of issue 15). Results: `benchmarks/results/band_odds.json`.

A row's half-width is factor × scale(elapsed) × m, m the model's own part (a GP's spread,
the `+assays` growth with the assay's age), recovered from the recorded interval and kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

sys.path.insert(0, str(Path(__file__).parent))

import accuracy
from accuracy_report import BAND, in_band
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


def _drawn(inputs: dict[str, Any], draw: list[str] | None) -> dict[str, Any]:
    """A calibration's inputs restricted to the drawn batches, a batch drawn twice counted as
    two batches (renamed); all of them when `draw` is None."""
    if draw is None:
        return inputs
    keys = ("residuals", "elapsed", "groups", "spread", "relative")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys if inputs[k] is not None}
    for j, batch in enumerate(draw):
        at = inputs["groups"] == batch
        for k in parts:
            parts[k].append(inputs[k][at] if k != "groups" else np.full(at.sum(), f"{batch}#{j}"))
    drawn = {k: np.concatenate(v) for k, v in parts.items()}
    return {"spread": None, "relative": None, **drawn, "level": inputs["level"]}


def _half(row: dict[str, Any], draw: list[str] | None = None) -> np.ndarray:
    """Half-widths of one row and fold with calibrations refitted by the current code (from the
    drawn training batches only, if given)."""
    half = row["upper"] - row["mean"]
    new = half.copy()
    for i, (grid, scale, factor, inputs) in enumerate(row["calibrations"]):
        at = row["source"] == i
        old = factor * np.interp(row["elapsed"][at], grid, scale)
        own = half[at] / np.maximum(old, 1e-300)
        use = _drawn(inputs, draw)
        refit = IntervalCalibration.fit(
            use["residuals"], use["elapsed"], use["groups"], use["spread"],
            use["level"], use["relative"],
        )  # fmt: skip
        new[at] = refit.factor * refit.std(row["elapsed"][at]) * own
    return new


def score(rows: list[dict[str, Any]], draws: list[list[str]] | None = None) -> dict[str, Any]:
    """Coverage of one row's held-out predictions (all folds), calibrations refitted (from each
    fold's drawn training batches, if given): per batch, their median, pooled; mean width."""
    y = np.concatenate([r["y"] for r in rows])
    mean = np.concatenate([r["mean"] for r in rows])
    groups = np.concatenate([r["groups"] for r in rows])
    folds = draws if draws is not None else [None] * len(rows)
    half = np.concatenate([_half(r, d) for r, d in zip(rows, folds, strict=True)])
    floor = 0.0 if all(np.all(r["lower"] >= 0) for r in rows) else -np.inf
    inside = (y >= np.maximum(mean - half, floor)) & (y <= mean + half)
    per_batch = {str(g): float(np.mean(inside[groups == g])) for g in np.unique(groups)}
    return {"median": float(np.median(list(per_batch.values()))), "per_batch": per_batch,
            "pooled": float(np.mean(inside)), "width": float(np.mean(2 * half))}  # fmt: skip


def replay(out: Path) -> None:
    saved = pickle.loads(out.read_bytes())
    for name, rows in saved.items():
        inside = 0
        for key, folds in rows.items():
            s = score(folds)
            ok = bool(in_band(s["median"]))
            inside += ok
            print(f"{name:4s} {key:26s} median {s['median']:.3f} pooled {s['pooled']:.3f} "
                  f"width {s['width']:.3f} {'ok' if ok else 'OUT'}")  # fmt: skip
        print(f"{name}: {inside}/{len(rows)} rows in [0.90, 0.97]")


def training_batches(folds: list[dict[str, Any]]) -> list[list[str]]:
    """Each fold's training batches: those its first calibration was fitted on."""
    return [sorted(set(f["calibrations"][0][3]["groups"])) for f in folds]


def odds(out: Path, replicates: int, seed: int = 0) -> None:
    """Per row: the per-batch median coverage when each fold's training batches are redrawn
    ("training"), and when the scored held-out batches are redrawn too ("both": another 16
    batches of the same kind, each scored as its own fold scored it)."""
    saved = pickle.loads(out.read_bytes())
    rng = np.random.default_rng(seed)
    results: dict[str, Any] = {"replicates": replicates, "band": list(BAND)}
    for name, rows in saved.items():
        batches = training_batches(next(iter(rows.values())))
        held_out = sorted(score(next(iter(rows.values())))["per_batch"])
        medians: dict[str, dict[str, list[float]]] = {"training": {}, "both": {}}
        for _ in track(range(replicates), description=f"{name}: batches redrawn"):
            draws = [list(rng.choice(b, size=len(b), replace=True)) for b in batches]
            scored = rng.choice(held_out, size=len(held_out), replace=True)
            for key, folds in rows.items():
                per_batch = score(folds, draws)["per_batch"]
                medians["training"].setdefault(key, []).append(np.median(list(per_batch.values())))
                medians["both"].setdefault(key, []).append(
                    np.median([per_batch[g] for g in scored])
                )
        results[name] = {"recorded": {key: score(folds)["median"] for key, folds in rows.items()}}
        for scheme, table in medians.items():
            inside = {key: in_band(np.array(m)) for key, m in table.items()}
            every = np.all(np.vstack(list(inside.values())), axis=0)
            results[name][scheme] = {
                "in_band": {key: float(v.mean()) for key, v in inside.items()},
                "median_5_50_95": {
                    key: [float(q) for q in np.quantile(m, [0.05, 0.5, 0.95])]
                    for key, m in table.items()
                },
                "every_row_in_band": float(every.mean()),
                "rows_in_band_mean": float(np.sum(list(inside.values()), axis=0).mean()),
            }
        print(odds_table(name, results[name]))
    target = Path(__file__).parent / "results" / "band_odds.json"
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {target}")


def odds_table(name: str, result: dict[str, Any]) -> str:
    lines = [
        f"{name}: per-batch median coverage, recorded | redrawn 5 / 50 / 95 % and share in band: "
        "training batches | training and scored batches"
    ]
    for key, recorded in result["recorded"].items():
        cells = [
            "{:.3f} / {:.3f} / {:.3f} {:4.0%}".format(
                *result[s]["median_5_50_95"][key], result[s]["in_band"][key]
            )
            for s in ("training", "both")
        ]
        lines.append(f"  {key:26s} {recorded:.3f} | {cells[0]} | {cells[1]}")
    training, both = result["training"], result["both"]
    lines.append(
        f"  every row in band: {training['every_row_in_band']:.1%} | "
        f"{both['every_row_in_band']:.1%} of draws; rows in band on average "
        f"{training['rows_in_band_mean']:.1f} | {both['rows_in_band_mean']:.1f} "
        f"of {len(result['recorded'])}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["record", "replay", "odds"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/calibration-replay.pkl"))
    parser.add_argument("--replicates", type=int, default=400, help="draws for `odds`")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("models.gp", "models.lstm", "accuracy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.mode == "record":
        record(args.out)
    elif args.mode == "replay":
        replay(args.out)
    else:
        odds(args.out, args.replicates)


if __name__ == "__main__":
    main()
