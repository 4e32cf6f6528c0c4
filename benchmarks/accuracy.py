"""Accuracy benchmark (issue 15): every candidate on the IndPenSim dev set and on the built-in
simulator, folds grouped by batch (whole batches held out).

* Soft sensor, scored every hour against the dense true titer (never a model input): RMSE,
  per-batch RMSE (median, max), 95 %-interval coverage pooled and per-batch median, interval
  width, fit and predict seconds; both modes: `online` (sensors only) and `+assays` (corrected
  by the batch's own lab titers so far, `models.anchored`).
* Harvest forecast (final titer) at 25/50/75 % of batch time against the naive forecast (mean
  final titer of the training batches), with interval width per horizon.
* Process change (dev set): temperature-shift batches scored by models trained on the normal
  batches only, then after retraining with half of them (scored on the other half).
* Retraining cost: every candidate, both tasks, on 16/64/256 batches (dev batches repeated
  under new ids), seconds per size.

    .venv/bin/python benchmarks/accuracy.py [--sim-batches 24] [--sizes 16 64 256] [--skip ...]

Writes benchmarks/results/accuracy.json and accuracy.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from accuracy_report import in_band, markdown
from devset import NORMAL, TEMPERATURE_SHIFT, dev_features, load_folder, load_truth
from simtruth import simulate_with_truth

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.settings import DEFAULT_SPEC, Settings
from bioprocessml.spec import load_spec
from models.anchored import AssayAnchoredModel
from models.base import Prediction, Samples, Task
from models.features import FeatureSpec, make_samples
from models.naive import NaiveModel
from models.training import build_candidate

RESULTS = Path(__file__).parent / "results"
CANDIDATES = ("pls", "gp", "lstm", "hybrid")
FOLDS = 4
HORIZONS = (0.25, 0.5, 0.75)
SEED = "BIOPROCESSML_TRAINING__SEED"  # the candidates' training seed (settings.training.seed)
HARVEST_FROM = 0.1  # share of the batch where harvest training samples start
log = logging.getLogger("accuracy")


def cut(batch: pd.DataFrame, cuts: np.ndarray, targets: np.ndarray) -> Samples:
    """The batch's histories up to each cut (hours), with the given targets."""
    time_h = batch[TIME].to_numpy(dtype=float)
    return Samples(
        [batch[time_h <= c + 1e-9] for c in cuts], targets,
        np.full(len(cuts), str(batch[BATCH_ID].iloc[0])), cuts,
        (cuts - time_h[0]) / (time_h[-1] - time_h[0]),
    )  # fmt: skip


def true_titer(
    batch: pd.DataFrame, truth: pd.DataFrame, target: str
) -> tuple[np.ndarray, np.ndarray]:
    """Times and true titer of this batch (scoring only)."""
    mine = truth[truth[BATCH_ID] == batch[BATCH_ID].iloc[0]]
    return mine[TIME].to_numpy(float), mine[target].to_numpy(float)


def hourly(batch: pd.DataFrame, truth: pd.DataFrame, target: str) -> Samples:
    """Histories cut every hour, each with the true titer at the cut (scoring only)."""
    time_h = batch[TIME].to_numpy(dtype=float)
    cuts = np.arange(time_h[0] + 1.0, time_h[-1] + 1e-9, 1.0)
    return cut(batch, cuts, np.interp(cuts, *true_titer(batch, truth, target)))


def hourly_harvest(batch: pd.DataFrame, truth: pd.DataFrame, target: str) -> Samples:
    """Harvest forecasts from every hour between 10 % of the batch (where training samples
    start) and its end, plus the cuts at exactly 25/50/75 %, each with the true final titer:
    the service is asked at any hour, not only at the 19 cuts the models are trained and
    scored at (where the newest assay always has the same age at a given cut)."""
    time_h = batch[TIME].to_numpy(dtype=float)
    start, duration = time_h[0], time_h[-1] - time_h[0]
    cuts = np.union1d(
        np.arange(start + HARVEST_FROM * duration, time_h[-1] + 1e-9, 1.0),
        [start + h * duration for h in HORIZONS],
    )
    final = true_titer(batch, truth, target)[1][-1]
    return cut(batch, cuts, np.full(len(cuts), final))


def join(parts: list[Samples]) -> Samples:
    return Samples(
        [h for p in parts for h in p.histories], np.concatenate([p.targets for p in parts]),
        np.concatenate([p.groups for p in parts]), np.concatenate([p.times for p in parts]),
        np.concatenate([p.fractions for p in parts]),
    )  # fmt: skip


def join_predictions(parts: list[Prediction]) -> Prediction:
    return Prediction(
        *(np.concatenate([getattr(p, k) for p in parts]) for k in ("mean", "lower", "upper"))
    )


def passing_widths(pred: Prediction, samples: Samples) -> tuple[float, float]:
    """Smallest and largest multiple of every interval's half-width (one for all rows) at which
    the per-batch median coverage lies in [0.90, 0.97]: how far a row is from the band and how
    narrow the band is (NaN, NaN if no multiple in ×0.4 … ×2.5 does it)."""
    y, groups = samples.targets, samples.groups
    half = pred.upper - pred.mean
    floor = 0.0 if np.all(pred.lower >= 0.0) else -np.inf
    passing = []
    for k in np.exp(np.linspace(np.log(0.4), np.log(2.5), 93)):
        inside = (y >= np.maximum(pred.mean - k * half, floor)) & (y <= pred.mean + k * half)
        median = np.median([np.mean(inside[groups == g]) for g in np.unique(groups)])
        if in_band(median):
            passing.append(k)
    return (min(passing), max(passing)) if passing else (float("nan"), float("nan"))


def interval_metrics(pred: Prediction, samples: Samples) -> dict[str, float]:
    y, groups = samples.targets, samples.groups
    error = pred.mean - y
    inside = (y >= pred.lower) & (y <= pred.upper)
    names = np.unique(groups)
    batch_rmse = [float(np.sqrt(np.mean(error[groups == g] ** 2))) for g in names]
    low, high = passing_widths(pred, samples)
    return {
        "passing_width_low": low,
        "passing_width_high": high,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "batch_rmse_median": float(np.median(batch_rmse)),
        "batch_rmse_max": float(np.max(batch_rmse)),
        "coverage": float(np.mean(inside)),
        "batch_coverage_median": float(np.median([np.mean(inside[groups == g]) for g in names])),
        "width": float(np.mean(pred.upper - pred.lower)),
    }


def harvest_metrics(pred: Prediction, samples: Samples, naive: np.ndarray) -> dict[str, float]:
    out = interval_metrics(pred, samples)
    for h in HORIZONS:
        at = np.isclose(samples.fractions, h)
        tag = int(h * 100)
        out[f"rmse_at_{tag}"] = float(np.sqrt(np.mean((pred.mean[at] - samples.targets[at]) ** 2)))
        out[f"naive_rmse_at_{tag}"] = float(
            np.sqrt(np.mean((naive[at] - samples.targets[at]) ** 2))
        )
        out[f"gain_at_{tag}"] = 1.0 - out[f"rmse_at_{tag}"] / out[f"naive_rmse_at_{tag}"]
        out[f"width_at_{tag}"] = float(np.mean(pred.upper[at] - pred.lower[at]))
    return out


def fit_timed(name: str, task: Task, fs: FeatureSpec, train: Samples) -> tuple[Any, float]:
    start = time.perf_counter()
    model = build_candidate(name, task, fs, Settings()).fit(train)
    return model, time.perf_counter() - start


def predict_timed(model: Any, histories: list[pd.DataFrame]) -> tuple[Prediction, float]:
    start = time.perf_counter()
    return model.predict(histories), time.perf_counter() - start


def evaluate_split(
    train_batches: list[pd.DataFrame], test_batches: list[pd.DataFrame], truth: pd.DataFrame,
    fs: FeatureSpec, candidates: tuple[str, ...],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Predictions of every candidate row (soft sensor online and +assays, harvest) on one split."""
    out: dict[str, dict[str, Any]] = {}
    test_soft = join([hourly(b, truth, fs.target) for b in test_batches])
    train_soft = make_samples(train_batches, fs, "soft_sensor")
    train_harvest = make_samples(train_batches, fs, "harvest")
    test_harvest = make_samples(test_batches, fs, "harvest")
    every_hour = join([hourly_harvest(b, truth, fs.target) for b in test_batches])
    naive = NaiveModel("harvest").fit(train_harvest).predict(test_harvest.histories).mean
    for name in candidates:
        model, fit_s = fit_timed(name, "soft_sensor", fs, train_soft)
        pred, pred_s = predict_timed(model, test_soft.histories)
        out[f"soft_sensor/{name}"] = {
            "pred": pred, "samples": test_soft, "fit_s": fit_s, "predict_s": pred_s,
            "calibrations": (model.calibration_,),
        }  # fmt: skip
        start = time.perf_counter()
        anchored = AssayAnchoredModel(model).calibrate(train_soft)
        calib_s = time.perf_counter() - start
        pred, pred_s = predict_timed(anchored, test_soft.histories)
        out[f"soft_sensor/{name}+assays"] = {
            "pred": pred, "samples": test_soft, "fit_s": fit_s + calib_s, "predict_s": pred_s,
            "calibrations": (model.calibration_, anchored.calibration_),
        }  # fmt: skip
        model, fit_s = fit_timed(name, "harvest", fs, train_harvest)
        pred, pred_s = predict_timed(model, test_harvest.histories)
        out[f"harvest/{name}"] = {
            "pred": pred, "samples": test_harvest, "naive": naive, "fit_s": fit_s, "predict_s": pred_s,
            "calibrations": (model.calibration_,),
            "every_hour": (model.predict(every_hour.histories), every_hour),
        }  # fmt: skip
        log.info("%s done (soft fit %.1f s)", name, out[f"soft_sensor/{name}"]["fit_s"])
    return out


def summarize(splits: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Pool the held-out predictions of all splits per row and score them once."""
    table: dict[str, dict[str, float]] = {}
    for key in splits[0]:
        parts = [s[key] for s in splits]
        pred = join_predictions([p["pred"] for p in parts])
        samples = join([p["samples"] for p in parts])
        if key.startswith("harvest/"):
            metrics = harvest_metrics(pred, samples, np.concatenate([p["naive"] for p in parts]))
            hourly = interval_metrics(
                join_predictions([p["every_hour"][0] for p in parts]),
                join([p["every_hour"][1] for p in parts]),
            )
            metrics["hourly_coverage"] = hourly["coverage"]
            metrics["hourly_batch_coverage_median"] = hourly["batch_coverage_median"]
        else:
            metrics = interval_metrics(pred, samples)
        metrics["fit_s"] = float(np.mean([p["fit_s"] for p in parts]))
        metrics["predict_s"] = float(np.mean([p["predict_s"] for p in parts]))
        table[key] = metrics
    return table


def cross_validate(
    batches: list[pd.DataFrame], truth: pd.DataFrame, fs: FeatureSpec, candidates: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Folds of whole batches: batch i is held out in fold i mod FOLDS."""
    splits = []
    for k in range(FOLDS):
        test = [b for i, b in enumerate(batches) if i % FOLDS == k]
        train = [b for i, b in enumerate(batches) if i % FOLDS != k]
        log.info("fold %d/%d: %d train, %d held out", k + 1, FOLDS, len(train), len(test))
        splits.append(evaluate_split(train, test, truth, fs, candidates))
    return summarize(splits)


def process_change(
    normal: list[pd.DataFrame], shifted: list[pd.DataFrame], truth: pd.DataFrame,
    fs: FeatureSpec, candidates: tuple[str, ...],
) -> dict[str, dict[str, dict[str, float]]]:  # fmt: skip
    """Changed batches scored by stale models, then by models retrained with half of them."""
    half = len(shifted) // 2
    stale = summarize([evaluate_split(normal, shifted[half:], truth, fs, candidates)])
    retrained = summarize(
        [evaluate_split(normal + shifted[:half], shifted[half:], truth, fs, candidates)]
    )
    return {"trained_on_normal_only": stale, "retrained_with_changed": retrained}


def repeated(batches: list[pd.DataFrame], n: int) -> list[pd.DataFrame]:
    """n batches: the given ones repeated under new ids."""
    return [batches[i % len(batches)].assign(**{BATCH_ID: f"rep{i:04d}"}) for i in range(n)]


def retraining_cost(
    batches: list[pd.DataFrame], fs: FeatureSpec, sizes: list[int], candidates: tuple[str, ...]
) -> list[dict[str, float]]:
    """Seconds to retrain every candidate for both tasks (and calibrate the +assays mode)."""
    rows = []
    for n in sizes:
        data = repeated(batches, n)
        row: dict[str, float] = {"batches": n}
        start = time.perf_counter()
        for task in ("soft_sensor", "harvest"):
            samples = make_samples(data, fs, task)
            for name in candidates:
                model, seconds = fit_timed(name, task, fs, samples)
                if task == "soft_sensor":
                    begin = time.perf_counter()
                    AssayAnchoredModel(model).calibrate(samples)
                    seconds += time.perf_counter() - begin
                row[f"{task}/{name}_s"] = seconds
        row["total_s"] = time.perf_counter() - start
        log.info("retraining at %d batches: %.0f s", n, row["total_s"])
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sim-batches", type=int, default=24)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--skip", nargs="*", default=[], choices=["dev", "sim", "change", "cost"])
    parser.add_argument(
        "--seeds", type=int, nargs="*", default=[1, 2],
        help="more training seeds to repeat the dev cross-validation with (the tables use 0)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "accuracy.json")
    parser.add_argument(
        "--gp-sparse-threshold", type=int, default=500,
        help="rows above which the GP is variational (settings: training.gp_sparse_threshold)",
    )  # fmt: skip
    args = parser.parse_args()
    os.environ["BIOPROCESSML_TRAINING__GP_SPARSE_THRESHOLD"] = str(args.gp_sparse_threshold)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("models.gp", "models.lstm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    candidates = tuple(args.candidates)
    fs = dev_features()
    normal, truth = load_folder(NORMAL), load_truth()
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["candidates"] = list(candidates)
    results["gp_sparse_threshold"] = args.gp_sparse_threshold
    if "dev" not in args.skip:
        results["dev"] = cross_validate(normal, truth, fs, candidates)
        save(results, args.out)
        results["dev_seeds"] = {}
        for seed in args.seeds:
            log.info("dev set again, training seed %d", seed)
            os.environ[SEED] = str(seed)
            results["dev_seeds"][str(seed)] = cross_validate(normal, truth, fs, candidates)
            os.environ.pop(SEED)
            save(results, args.out)
    if "change" not in args.skip:
        shifted = load_folder(TEMPERATURE_SHIFT)
        results["process_change"] = process_change(normal, shifted, truth, fs, candidates)
        save(results, args.out)
    if "sim" not in args.skip:
        sim, sim_truth = simulate_with_truth(args.sim_batches, seed=2024)
        sim_fs = FeatureSpec.from_spec(load_spec(DEFAULT_SPEC))
        results["simulator"] = cross_validate(sim, sim_truth, sim_fs, candidates)
        save(results, args.out)
    if "cost" not in args.skip:
        results["retraining"] = retraining_cost(normal, fs, args.sizes, candidates)
        save(results, args.out)


def save(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    log.info("written %s and %s", out, out.with_suffix(".md"))


if __name__ == "__main__":
    main()
