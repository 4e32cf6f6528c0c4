"""Helpers of the fault suite: faults are injected into the shared stack (tests/stack.py), and
each test leaves it running again. Measured recovery times are written to the file named by
`BIOPROCESSML_FAULT_RESULTS` (the README's fault table comes from such a run)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bioprocessml.ingest.catalogue import Catalogue, Entry
from bioprocessml.settings import Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack import processes
from tests.conftest import TINY

pytestmark = pytest.mark.integration

# Seconds a test waits for the Prefect server to take one event: after a burst the server of a
# loaded 2-core CI machine was seen not answering for over 10 s (the watcher retries such a send;
# a test that posts by itself must wait, since what it checks is the chain, not the server's pace).
SLOW_SERVER = 60.0


def entries_for(settings: Settings, names: set[str]) -> list[Entry]:
    return [e for e in Catalogue(settings.data_dir / "catalogue.db").entries() if e.file in names]


def cheap_files(folder: Path, prefix: str, n: int) -> list[Path]:
    """Distinct files the gate rejects at once (header only), for bursts."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{prefix}-{i:03d}.csv"
        path.write_text(f"batch_id,time_h,{prefix}_{i}\n")
        paths.append(path)
    return paths


def valid_files(folder: Path, spec: DatasetSpec, n: int, start: int) -> list[Path]:
    return write_simulated(folder, spec, n, "normal", seed=start, start=start, cfg=TINY)


def put(path: Path, incoming: Path) -> None:
    target = incoming / path.name
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(path.read_bytes())
    partial.rename(target)


def kill9(settings: Settings, name: str) -> int:
    record = processes.read_record(settings.state_dir, name)
    assert record is not None and record.alive(), f"{name} is not running"
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while record.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return record.pid


@pytest.fixture(scope="session")
def recovery_times() -> Iterator[dict[str, float]]:
    times: dict[str, float] = {}
    yield times
    target = os.environ.get("BIOPROCESSML_FAULT_RESULTS")
    if target and times:
        Path(target).write_text(json.dumps(times, indent=2))
