"""Ingest benchmark: GX validation throughput (rows/s) and arrival→verdict latency on the
embedded stack (watcher → Prefect event → deployment trigger → process worker → verdict).

    .venv/bin/python benchmarks/ingest.py [--files 8]

Writes benchmarks/results/ingest.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.ingest.validation import validate_file
from bioprocessml.settings import DEFAULT_SPEC, Settings, disable_telemetry
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.stack.servers import down, free_port, up

RESULTS = Path(__file__).parent / "results" / "ingest.json"


def bench_validation(spec: DatasetSpec, root: Path, n: int) -> dict[str, float]:
    files = write_simulated(root / "val", spec, n + 1, "normal", seed=1)
    validate_file(files[0], spec)  # warm-up: GX import and first context
    rows = seconds = docs_seconds = 0.0
    for i, path in enumerate(files[1:]):
        start = time.perf_counter()
        report, frame = validate_file(path, spec, docs_dir=root / f"docs{i}" if i % 2 else None)
        elapsed = time.perf_counter() - start
        assert report.ok and frame is not None, report.summary()
        if i % 2:
            docs_seconds += elapsed
        else:
            seconds += elapsed
            rows += len(frame)
    plain = (n + 1) // 2
    return {
        "files": n,
        "rows_per_file": rows / plain,
        "seconds_per_file": seconds / plain,
        "rows_per_second": rows / seconds,
        "seconds_per_file_with_data_docs": docs_seconds / (n - plain),
    }


def wait_verdict(catalogue: Catalogue, name: str, timeout: float = 180) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.file == name for e in catalogue.entries()):
            return time.monotonic()
        time.sleep(0.1)
    raise TimeoutError(f"no verdict for {name} within {timeout} s")


def bench_latency(spec: DatasetSpec, root: Path, n: int) -> dict[str, float]:
    settings = Settings(
        state_dir=root / "state", data_dir=root / "data", watch_settle_seconds=0.5,
        prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
    )  # fmt: skip
    files = write_simulated(root / "lat", spec, n + 3, "normal", seed=2)
    start = time.monotonic()
    up(settings, watch=True)
    startup = time.monotonic() - start
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    try:
        latencies = []
        for path in files[:n]:  # one at a time
            dropped = time.monotonic()
            (settings.incoming_dir / path.name).write_bytes(path.read_bytes())
            latencies.append(wait_verdict(catalogue, path.name) - dropped)
        burst_start = time.monotonic()
        for path in files[n:]:
            (settings.incoming_dir / path.name).write_bytes(path.read_bytes())
        burst = max(wait_verdict(catalogue, p.name) for p in files[n:]) - burst_start
    finally:
        down(settings)
    return {
        "stack_startup_seconds": startup,
        "files": n,
        "latency_median_seconds": statistics.median(latencies),
        "latency_max_seconds": max(latencies),
        "latency_min_seconds": min(latencies),
        "burst_of_3_all_verdicts_seconds": burst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    disable_telemetry()
    spec = load_spec(DEFAULT_SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "validation": bench_validation(spec, Path(tmp), args.files),
            "arrival_to_verdict": bench_latency(spec, Path(tmp), args.files),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    for section, values in results.items():
        for key, value in values.items():
            print(f"{section:20s} {key:40s} {value:10.2f}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
