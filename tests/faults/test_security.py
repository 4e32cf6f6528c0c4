"""Nothing an arrival controls (payload path, file name, batch id) writes outside the data
folder, and no secret (the admin token) shows in logs, MLflow tags, reports or Prefect logs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from bioprocessml.events import BATCH_ARRIVED, ArrivedPayload, batch_resource, post_event
from bioprocessml.ingest.arrival import ingest_file
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from tests.faults.conftest import SLOW_SERVER, entries_for, valid_files
from tests.stack import prefect_post, wait_until

HOSTILE_IDS = ["../../escape", "/etc/cron.d/x", "..", "a/../../b", "C:\\x\\..\\y", "x" * 400,
               "ü\u202e\u0000nul", " "]  # fmt: skip
HOSTILE_NAMES = ["..csv", "...csv", "-rf .csv", "a b\u202e.csv", "x" * 240 + ".csv"]


def files_under(root: Path) -> set[Path]:
    return {p.resolve() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("batch_id", HOSTILE_IDS)
def test_batch_id_cannot_write_outside_the_data_folder(
    tmp_path: Path, spec: DatasetSpec, batch_id: str
) -> None:
    root = tmp_path / "root"
    settings = Settings(state_dir=root / "state", data_dir=root / "data").prepare()
    [source] = valid_files(tmp_path / "src", spec, 1, 7801)
    frame = pd.read_csv(source)
    frame["batch_id"] = batch_id
    (settings.incoming_dir / "hostile.csv").write_bytes(frame.to_csv(index=False).encode())
    before = files_under(tmp_path) - files_under(root)
    result = ingest_file("hostile.csv", settings, spec)
    assert result.verdict in {"accepted", "quarantined"}, result
    assert files_under(tmp_path) - files_under(root) == before, "nothing written outside root/"
    data = settings.data_dir.resolve()
    assert all(p.is_relative_to(data) for p in files_under(settings.data_dir))
    if result.verdict == "accepted":
        assert result.location and (data / result.location).resolve().parent == (
            settings.accepted_dir.resolve()
        )


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_file_name_cannot_write_outside_the_data_folder(tmp_path: Path, name: str) -> None:
    from bioprocessml.settings import DEFAULT_SPEC
    from bioprocessml.spec import load_spec

    root = tmp_path / "root"
    settings = Settings(state_dir=root / "state", data_dir=root / "data").prepare()
    (settings.incoming_dir / name).write_bytes(b"not,a\nbatch\n")
    result = ingest_file(name, settings, load_spec(DEFAULT_SPEC))
    assert result.verdict == "quarantined" and result.location
    folder = (settings.data_dir / result.location).resolve()
    assert folder.parent == settings.quarantine_dir.resolve()
    assert not (files_under(tmp_path) - files_under(root))


def test_event_payload_path_cannot_leave_the_incoming_folder(stack: Settings) -> None:
    outside = stack.data_dir.parent / "outside-secret.txt"
    outside.write_text("do not read\n")
    path = f"../../{outside.parent.name}/{outside.name}"
    payload = ArrivedPayload(path=path, sha256="0" * 64, size=12)
    post_event(stack.prefect_api_url, BATCH_ARRIVED, batch_resource("evil"), payload,
               str(uuid.uuid4()), timeout=SLOW_SERVER)  # fmt: skip
    [entry] = wait_until(lambda: entries_for(stack, {path}), 120, "the refusal")
    assert entry.verdict == "refused" and "must not contain '..'" in entry.reasons[0]
    assert outside.read_text() == "do not read\n"


def test_no_secret_in_logs_mlflow_tags_or_reports(stack: Settings) -> None:
    token = stack.serving.admin_token
    assert token is not None
    secret = token.get_secret_value()
    time.sleep(2)  # let the runner's and server's logs flush
    for folder in (stack.state_dir / "logs", stack.reports_dir, stack.data_dir):
        for path in (p for p in folder.rglob("*") if p.is_file() and p.stat().st_size < 50e6):
            assert secret.encode() not in path.read_bytes(), path
    client = MlflowClient(tracking_uri=stack.tracking_uri)
    experiments = client.search_experiments()
    for run in client.search_runs([e.experiment_id for e in experiments], max_results=5000):
        assert secret not in str(run.data.tags) and secret not in str(run.data.params), run.info
    for version in client.search_model_versions():
        assert secret not in str(version.tags)
    offset = 0
    while True:
        logs = prefect_post(stack, "logs/filter", {"limit": 200, "offset": offset})
        assert not [log for log in logs if secret in log["message"]]
        if len(logs) < 200:
            break
        offset += 200
