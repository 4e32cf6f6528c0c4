"""GP vs PLS soft sensor over several simulated splits: is the GP's win (and its calibration)
robust, or luck of one seed?

For each seed: 30 normal batches, the newest 10 held out whole (`split_batches`), the soft-sensor
candidates PLS (`models.pls`) and GP (`models.gp`) fitted on the other 20 and scored on the
held-out batches. Also a plain PLS whose component count is the CV minimum (the baseline in
tests/models/test_gp.py). Nothing here is tuned on the held-out batches.

    .venv/bin/python benchmarks/gp_vs_pls.py [--seeds 0 1 2 ...]

Writes benchmarks/results/gp_vs_pls.json and prints a table.

Findings (2026-11): GP and PLS tie (GP lower RMSE in 5 of 10 seeds 0–9, 43 of 60 seeds
200–259). Both sit near a floor: the product yields (the simulator's alpha, beta) vary by
batch and move no online signal, which alone leaves ~6.4 % batch-level titer error. Coverage
varies by split mostly through which 10 batches are held out (their rows share one error).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bioprocessml.dataset import BATCH_ID
from bioprocessml.settings import DEFAULT_SPEC
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import load_spec
from models.base import FloatArray, Samples, Task
from models.evaluate import score, split_batches
from models.features import FeatureSpec, feature_matrix, make_samples
from models.gp import GPModel
from models.pls import PLSModel

RESULTS = Path(__file__).parent / "results" / "gp_vs_pls.json"
SEEDS = tuple(range(10))
BATCHES, HOLDOUT_FRACTION = 30, 1 / 3
TASK: Task = "soft_sensor"
COVERAGE_BAND = (0.90, 0.98)


def split_samples(seed: int, fs: FeatureSpec) -> tuple[Samples, Samples]:
    batches = simulate(BATCHES, "normal", seed=seed)
    ids = [str(b[BATCH_ID].iloc[0]) for b in batches]
    train_ids, test_ids = split_batches(ids, HOLDOUT_FRACTION)
    by_id = dict(zip(ids, batches, strict=True))
    return (
        make_samples([by_id[i] for i in train_ids], fs, TASK),
        make_samples([by_id[i] for i in test_ids], fs, TASK),
    )


def plain_pls(train: Samples, test: Samples, fs: FeatureSpec) -> FloatArray:
    """Scaled PLS, component count at the minimum of batch-wise CV RMSE (as in the GP tests)."""
    x, x_test = (feature_matrix(s.histories, fs, TASK) for s in (train, test))
    cv_rmse = {}
    for k in range(1, min(x.shape[1], 15) + 1):
        pipeline = make_pipeline(StandardScaler(), PLSRegression(n_components=k))
        cv = cross_val_predict(pipeline, x, train.targets, groups=train.groups, cv=GroupKFold(5))
        cv_rmse[k] = float(np.sqrt(np.mean((np.ravel(cv) - train.targets) ** 2)))
    best = min(cv_rmse, key=cv_rmse.__getitem__)
    pipeline = make_pipeline(StandardScaler(), PLSRegression(n_components=best))
    return np.ravel(pipeline.fit(x, train.targets).predict(x_test))


def run_seed(seed: int, fs: FeatureSpec) -> dict[str, Any]:
    train, test = split_samples(seed, fs)
    pls = score(PLSModel(TASK, fs).fit(train).predict(test.histories), test, TASK)
    start = time.perf_counter()
    gp = GPModel(TASK, fs, seed=0).fit(train)
    fit_s = time.perf_counter() - start
    gp_score = score(gp.predict(test.histories), test, TASK)
    plain = float(np.sqrt(np.mean((plain_pls(train, test, fs) - test.targets) ** 2)))
    return {
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "pls_rmse": pls["rmse"],
        "pls_cv_min_rmse": plain,
        "gp_rmse": gp_score["rmse"],
        "gp_batch_rmse": gp_score["batch_rmse"],
        "pls_batch_rmse": pls["batch_rmse"],
        "gp_coverage": gp_score["coverage"],
        "pls_coverage": pls["coverage"],
        "gp_calibration_factor": gp.params_["calibration_factor"],
        "gp_fit_s": fit_s,
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    low, high = COVERAGE_BAND
    return {
        "seeds": len(rows),
        "mean_pls_rmse": float(np.mean([r["pls_rmse"] for r in rows])),
        "mean_pls_cv_min_rmse": float(np.mean([r["pls_cv_min_rmse"] for r in rows])),
        "mean_gp_rmse": float(np.mean([r["gp_rmse"] for r in rows])),
        "gp_beats_pls": sum(r["gp_rmse"] < r["pls_rmse"] for r in rows),
        "gp_beats_pls_cv_min": sum(r["gp_rmse"] < r["pls_cv_min_rmse"] for r in rows),
        "mean_gp_coverage": float(np.mean([r["gp_coverage"] for r in rows])),
        "gp_coverage_in_band": sum(low <= r["gp_coverage"] <= high for r in rows),
        "mean_gp_fit_s": float(np.mean([r["gp_fit_s"] for r in rows])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    fs = FeatureSpec.from_spec(load_spec(DEFAULT_SPEC))
    print(f"{'seed':>4} {'PLS':>7} {'PLS-min':>7} {'GP':>7} {'cover':>6} {'scale':>5} {'fit s':>5}")
    rows = []
    for seed in args.seeds:
        row = run_seed(seed, fs)
        rows.append(row)
        print(
            f"{seed:>4} {row['pls_rmse']:7.4f} {row['pls_cv_min_rmse']:7.4f} {row['gp_rmse']:7.4f}"
            f" {row['gp_coverage']:6.3f} {row['gp_calibration_factor']:5.2f} {row['gp_fit_s']:5.1f}",
            flush=True,
        )
    summary = summarize(rows)
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "seeds": rows}, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
