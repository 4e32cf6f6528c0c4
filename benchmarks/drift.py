"""Drift-check benchmark: seconds per `check_data_drift` call as the reference grows
(10, 40, 160 batches), with and without the Evidently HTML report.

    .venv/bin/python benchmarks/drift.py [--sizes 10 40 160] [--repeat 3]

Writes benchmarks/results/drift.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bioprocessml.settings import DEFAULT_SPEC
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import load_spec
from models.features import FeatureSpec
from monitoring.data_drift import check_data_drift

RESULTS = Path(__file__).parent / "results" / "drift.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 40, 160])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    fs = FeatureSpec.from_spec(load_spec(DEFAULT_SPEC))
    reference_pool = simulate(max(args.sizes), "normal", seed=1)
    stream = simulate(args.repeat + 5, "normal", seed=2, start=900)
    check_data_drift(stream[0], stream[:1], reference_pool[:10], fs)  # warm-up: imports
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            reference = reference_pool[:n]
            for html in (False, True):
                times = []
                for i in range(args.repeat):
                    new, window = stream[i + 5], stream[i + 1 : i + 6]
                    report = Path(tmp) / f"r{n}-{i}.html" if html else None
                    start = time.perf_counter()
                    check_data_drift(new, window, reference, fs, report_html=report)
                    times.append(time.perf_counter() - start)
                rows.append({"reference_batches": n, "html": html, "median_s": statistics.median(times),
                             "max_s": max(times)})  # fmt: skip
                print(rows[-1], flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
