"""The validation gate on the IndPenSim dev set (issue 16): wall and CPU time per 1150-row,
35-column file, GX included, in a warm process (as the flow runner runs it).

    .venv/bin/python benchmarks/validation.py [--dev DIR]

Writes benchmarks/results/validation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from indpensim import DEV

from bioprocessml.ingest.validation import validate_file
from bioprocessml.settings import PROJECT_ROOT, disable_telemetry
from bioprocessml.spec import load_spec

RESULTS = Path(__file__).parent / "results" / "validation.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--spec", type=Path, default=PROJECT_ROOT / "data/datasets/indpensim.yaml")
    args = parser.parse_args()
    disable_telemetry()
    spec = load_spec(args.spec)
    files = sorted(args.dev.glob("*/*.csv"))
    if not files:
        raise SystemExit(f"no batch files under {args.dev}")
    validate_file(files[0], spec)  # warm-up: GX imported, first context built
    load_before = os.getloadavg()
    wall, cpu, accepted = [], [], 0
    for path in files:
        w, c = time.perf_counter(), time.process_time()
        _, frame = validate_file(path, spec)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        accepted += frame is not None
    results = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
        },
        "files": len(files),
        "accepted": accepted,
        "wall_s": {"median": statistics.median(wall), "max": max(wall)},
        "cpu_s": {"median": statistics.median(cpu), "max": max(cpu)},
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{accepted}/{len(files)} accepted; wall median {results['wall_s']['median']:.3f} s "
          f"(max {max(wall):.3f}), CPU median {results['cpu_s']['median']:.3f} s → {RESULTS}")  # fmt: skip


if __name__ == "__main__":
    main()
