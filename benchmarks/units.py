"""Units benchmark: what reading real units costs on one IndPenSim dev file (1150 rows × 35
columns) through data/datasets/indpensim.yaml.

    .venv/bin/python benchmarks/units.py [--repeat 50]

Measures pint's first use (import, registry, resolving every unit of the spec), the unit work
of one file as the loader does it (a factor and an offset per column, vectorised), the whole
`load_batch`, and for contrast a pint Quantity per cell. Writes benchmarks/results/units.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from devset import find_dev_set

from bioprocessml.dataset import load_batch, read_raw, to_number
from bioprocessml.settings import PROJECT_ROOT
from bioprocessml.spec import load_spec
from bioprocessml.units import _pint_expression, _registry, get_unit, to_canonical

RESULTS = Path(__file__).parent / "results" / "units.json"
SPEC = PROJECT_ROOT / "data" / "datasets" / "indpensim.yaml"
DEV = find_dev_set()


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of `repeat` calls."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(repeat: int) -> dict[str, float | int | str]:
    start = time.perf_counter()
    spec = load_spec(SPEC)  # pint is imported, its registry built, every unit resolved
    first_use = time.perf_counter() - start
    path = DEV / "normal" / "ips-dev-500000.csv"
    raw = read_raw(path, spec)
    numbers = {v.name: to_number(raw[v.column], ".").to_numpy(float) for v in spec.variables}

    def convert() -> None:
        for var in spec.variables:
            to_canonical(numbers[var.name], var.unit)

    unit_work = timed(convert, repeat)
    load = timed(lambda: load_batch(path, spec), max(3, repeat // 5))
    ureg = _registry().ureg
    start = time.perf_counter()
    for var in spec.variables:
        unit, target = _pint_expression(var.unit), _pint_expression(get_unit(var.unit).canonical)
        [ureg.Quantity(x, unit).to(target).magnitude for x in numbers[var.name] if np.isfinite(x)]
    per_cell = time.perf_counter() - start
    return {
        "file": path.name,
        "rows": len(raw),
        "columns": len(raw.columns),
        "spec_load_with_pint_first_use_s": round(first_use, 3),
        "unit_work_per_file_ms": round(unit_work * 1000, 3),
        "load_batch_per_file_ms": round(load * 1000, 1),
        "pint_quantity_per_cell_s": round(per_cell, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    result = main(parser.parse_args().repeat)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:36} {value}")
