"""A dropped file travels watcher → event → deployment trigger → flow run → accepted + DVC."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bioprocessml.events import BATCH_ACCEPTED, BATCH_ARRIVED, BATCH_QUARANTINED
from bioprocessml.ingest.catalogue import Catalogue, Entry
from bioprocessml.ingest.versioning import current_version
from bioprocessml.settings import Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack.servers import stack_env
from tests.conftest import TINY
from tests.integration.conftest import drop, events, flow_runs, wait_until


def entries_for(settings: Settings, file: str) -> list[Entry]:
    return [e for e in Catalogue(settings.data_dir / "catalogue.db").entries() if e.file == file]


def test_drop_is_accepted_by_triggered_deployment_and_duplicate_filed_once(
    stack: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    source = write_simulated(tmp_path, spec, 1, "normal", seed=21, start=901, cfg=TINY)[0]
    drop(source, stack.incoming_dir)
    [entry] = wait_until(lambda: entries_for(stack, source.name), what="the verdict")
    assert entry.verdict == "accepted" and entry.batch_id == "N901"
    assert not (stack.incoming_dir / source.name).exists(), "file left incoming/ once filed"
    assert (stack.accepted_dir / "N901.csv").is_file()
    version = current_version(stack.data_dir)
    assert version is not None and version.md5 == entry.data_version
    assert (stack.data_dir / "accepted.dvc").is_file()
    [run] = wait_until(
        lambda: [r for r in flow_runs(stack, "on-arrival") if r["state_type"] == "COMPLETED"
                 and r["parameters"]["payload"]["path"] == source.name],
        what="the completed flow run",
    )  # fmt: skip
    assert run["parameters"]["payload"]["sha256"] == entry.sha256
    accepted = wait_until(
        lambda: [e for e in events(stack, BATCH_ACCEPTED) if e["payload"]["batch_id"] == "N901"],
        what="the accepted event",
    )
    assert accepted[0]["payload"]["data_version"] == entry.data_version

    # The same bytes again, under another name: recognised and filed once.
    drop(source, stack.incoming_dir, name="N901-resent.csv")
    [again] = wait_until(lambda: entries_for(stack, "N901-resent.csv"), what="the duplicate")
    assert again.verdict == "duplicate" and again.sha256 == entry.sha256
    assert not (stack.incoming_dir / "N901-resent.csv").exists()
    catalogue = Catalogue(stack.data_dir / "catalogue.db").entries()
    assert sum(e.verdict == "accepted" and e.batch_id == "N901" for e in catalogue) == 1
    # Two arrival events (the event store persists in batches, so wait for it).
    wait_until(
        lambda: (
            len([e for e in events(stack, BATCH_ARRIVED) if "N901" in e["payload"]["path"]]) == 2
        ),
        timeout=30,
        what="both arrival events in the event store",
    )


def test_corrupt_drop_is_quarantined_with_reason(
    stack: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    source = write_simulated(tmp_path, spec, 3, "corrupt", seed=5, start=950, cfg=TINY)[2]
    assert "time-out-of-order" in source.name
    drop(source, stack.incoming_dir)
    [entry] = wait_until(lambda: entries_for(stack, source.name), what="the verdict")
    assert entry.verdict == "quarantined" and entry.location
    folder = stack.data_dir / entry.location
    assert (folder / source.name).read_bytes() == source.read_bytes(), "original bytes kept"
    assert "time goes backwards" in " ".join(entry.reasons)
    assert (folder / "reason.json").is_file() and (folder / "data_docs" / "index.html").is_file()
    wait_until(
        lambda: [
            e for e in events(stack, BATCH_QUARANTINED) if e["payload"]["file"] == source.name
        ],
        what="the quarantined event",
    )


def test_ingest_command_backfills_a_file(
    stack: Settings, spec: DatasetSpec, tmp_path: Path
) -> None:
    source = write_simulated(tmp_path, spec, 1, "raw-material", seed=8, start=970, cfg=TINY)[0]
    env = {**stack_env(stack), "COLUMNS": "200"}
    cli = str(Path(sys.executable).parent / "bioprocessml")
    done = subprocess.run([cli, "ingest", str(source)], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and f"announced {source.name}" in done.stdout, done.stderr
    [entry] = wait_until(lambda: entries_for(stack, source.name), what="the verdict")
    assert entry.verdict == "accepted" and entry.batch_id == "RM970"
    assert source.exists(), "the user's original is copied, never moved"
