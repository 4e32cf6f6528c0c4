"""Training benchmark: fit time per candidate at 10, 20 and 40 batches, and gpytorch vs
scikit-learn GP fit time on the same data, measured side by side in one run.

    .venv/bin/python benchmarks/training.py [--sizes 10 20 40]

Writes benchmarks/results/training.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bioprocessml.settings import DEFAULT_SPEC, Settings
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import load_spec
from models.features import FeatureSpec, feature_matrix, make_samples
from models.training import build_candidate

RESULTS = Path(__file__).parent / "results" / "training.json"


def fit_seconds(model: Any, *data: Any) -> float:
    start = time.perf_counter()
    model.fit(*data)
    return time.perf_counter() - start


def sklearn_gp_seconds(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel() * RBF(np.ones(x.shape[1])) + WhiteKernel()
    model = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0)
    scaled = (x - x.mean(0)) / (x.std(0) + 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_seconds(model, scaled, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    settings = Settings()
    fs = FeatureSpec.from_spec(load_spec(DEFAULT_SPEC))
    batches = simulate(max(args.sizes), "normal", seed=1)
    rows = []
    for n in args.sizes:
        for task in ("soft_sensor", "harvest"):
            samples = make_samples(batches[:n], fs, task)
            row = {"batches": n, "task": task, "samples": len(samples)}
            for name in settings.training.candidates:
                row[f"{name}_s"] = fit_seconds(build_candidate(name, task, fs, settings), samples)
            # Same n, same features: the GP alone (no calibration folds) against scikit-learn's.
            from models.gp import GPModel

            row["gpytorch_gp_only_s"] = fit_seconds(GPModel(task, fs, calibrate=False), samples)
            x = feature_matrix(samples.histories, fs, task)
            row["sklearn_gp_s"] = sklearn_gp_seconds(x, samples.targets)
            rows.append(row)
            print(
                {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}, flush=True
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
