"""Arrivals under faults: a malformed event, a burst, a repeated event, a file still being
written, the Prefect server down. Each file ends with exactly one verdict; nothing is lost."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

from pydantic import BaseModel

from bioprocessml.events import BATCH_ARRIVED, ArrivedPayload, batch_resource, post_event
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack import processes
from bioprocessml.stack.servers import up
from tests.faults.conftest import SLOW_SERVER, cheap_files, entries_for, put, valid_files
from tests.stack import wait_until


class PathOnly(BaseModel):
    path: str


def test_malformed_arrival_is_refused_within_one_reconcile_interval(
    stack: Settings, recovery_times: dict[str, float]
) -> None:
    """The payload lacks sha256 and size (the trigger's template used to fail on the server and
    the arrival vanished); sent twice with one id, it is refused once, with its reason."""
    event_id = str(uuid.uuid4())
    sent = time.monotonic()
    for _ in range(2):
        post_event(stack.prefect_api_url, BATCH_ARRIVED, batch_resource("malformed"),
                   PathOnly(path="malformed.csv"), event_id, timeout=SLOW_SERVER)  # fmt: skip
    [entry] = wait_until(lambda: entries_for(stack, {"malformed.csv"}), 120, "the refusal")
    elapsed = time.monotonic() - sent
    recovery_times["malformed arrival event: sent to refused record (s)"] = round(elapsed, 1)
    assert entry.verdict == "refused"
    assert (
        "sha256: Field required" in entry.reasons[0] and "size: Field required" in entry.reasons[0]
    )
    assert elapsed <= stack.runtime.reconcile_seconds, f"refused after {elapsed:.1f} s"
    time.sleep(3)  # the repeated delivery has had time to run: still one record
    assert len(entries_for(stack, {"malformed.csv"})) == 1
    arrival = Catalogue(stack.data_dir / "catalogue.db").arrival(event_id)
    assert arrival is not None and arrival.outcome == "refused"


def test_burst_of_100_files_and_a_repeated_event_give_one_verdict_each(
    stack: Settings, spec: DatasetSpec, tmp_path: Path, recovery_times: dict[str, float]
) -> None:
    files = cheap_files(tmp_path, "burst", 96) + valid_files(tmp_path / "v", spec, 4, 7301)
    started = time.monotonic()
    for path in files:  # all within a second
        put(path, stack.incoming_dir)
    assert time.monotonic() - started < 1.0
    names = {p.name for p in files}
    found = wait_until(lambda: (e := entries_for(stack, names)) and len(e) >= len(names) and e,
                       600, "100 verdicts")  # fmt: skip
    recovery_times["burst of 100 files: all verdicts (s)"] = round(time.monotonic() - started, 1)
    assert sorted(e.file for e in found) == sorted(names), "exactly one verdict per file"
    assert sum(e.verdict == "accepted" for e in found) == 4
    assert not [p for p in names if (stack.incoming_dir / p).exists()]
    # The same event delivered again: recognised, nothing filed twice.
    catalogue = Catalogue(stack.data_dir / "catalogue.db")
    first = next(a for a in catalogue.arrivals() if a.file == files[-1].name)
    payload = ArrivedPayload(path=first.file, sha256=first.sha256, size=first.size)
    post_event(stack.prefect_api_url, BATCH_ARRIVED, batch_resource("again"), payload, first.id,
               timeout=SLOW_SERVER)  # fmt: skip
    time.sleep(8)
    assert len(entries_for(stack, {first.file})) == 1
    assert all(a.settled_at is not None for a in catalogue.arrivals() if a.file in names)


def test_file_still_being_written_is_judged_whole(
    stack: Settings, spec: DatasetSpec, tmp_path: Path, recovery_times: dict[str, float]
) -> None:
    """Written in place under its final name, with pauses shorter than the settle time."""
    [source] = valid_files(tmp_path, spec, 1, 7401)
    data = source.read_bytes()
    target = stack.incoming_dir / source.name
    with target.open("wb") as handle:
        for start in range(0, len(data), len(data) // 6 + 1):
            handle.write(data[start : start + len(data) // 6 + 1])
            handle.flush()
            time.sleep(stack.watch_settle_seconds * 0.6)
    written = time.monotonic()
    [entry] = wait_until(lambda: entries_for(stack, {source.name}), 180, "the verdict")
    recovery_times["file written in place: last write to verdict (s)"] = round(
        time.monotonic() - written, 1
    )
    assert entry.verdict == "accepted", entry.reasons
    assert entry.sha256 == hashlib.sha256(data).hexdigest(), "judged on the complete bytes"


def test_arrivals_while_prefect_server_is_down_are_kept_and_processed_after(
    stack: Settings, spec: DatasetSpec, tmp_path: Path, recovery_times: dict[str, float]
) -> None:
    record = processes.read_record(stack.state_dir, "prefect-server")
    assert record is not None
    processes.stop_group(record.pid)
    files = cheap_files(tmp_path, "down", 3) + valid_files(tmp_path / "v", spec, 1, 7501)
    names = {p.name for p in files}
    for path in files:
        put(path, stack.incoming_dir)
    catalogue = Catalogue(stack.data_dir / "catalogue.db")
    wait_until(lambda: len([a for a in catalogue.open_arrivals() if a.file in names]) == 4,
               60, "the arrivals on record")  # fmt: skip
    time.sleep(3)
    assert not entries_for(stack, names), "nothing judged while the server is away"
    assert all((stack.incoming_dir / n).exists() for n in names), "files kept"
    back = time.monotonic()
    up(stack, ui=False)
    found = wait_until(lambda: (e := entries_for(stack, names)) and len(e) == len(names) and e,
                       300, "verdicts after the server came back")  # fmt: skip
    recovery_times["Prefect server down: restart to all verdicts (s)"] = round(
        time.monotonic() - back, 1
    )
    assert sorted(e.file for e in found) == sorted(names)
    assert sum(e.verdict == "accepted" for e in found) == 1
