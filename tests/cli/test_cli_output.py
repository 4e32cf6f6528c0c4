"""Commands as a script or a pipe sees them: drafted specs, tables that keep every id whole
when the output is not a terminal, and `--json` that parses."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bioprocessml.ingest.quarantine import Quarantined
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_store import start_rollout
from bioprocessml.settings import DEFAULT_SPEC
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.spec import DatasetSpec
from monitoring.history import DriftRecord, save_record
from tests.cli.test_cli import run
from tests.conftest import TINY

LONG_ID = "plant-a-penicillin-campaign-2026-batch-000042"
NARROW = {"COLUMNS": "40"}  # what a pipe or CI log would get: ids must still come out whole


def test_spec_draft_then_check_then_inspect(tmp_path: Path, spec: DatasetSpec) -> None:
    files = [str(p) for p in write_simulated(tmp_path, spec, 2, "normal", seed=1, cfg=TINY)]
    printed = run("spec", "draft", *files)
    assert printed.returncode == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["target"] == "titer"
    out = tmp_path / "mine.yaml"
    drafted = run("spec", "draft", *files, "--target", "titer_gL", "--out", str(out))
    assert drafted.returncode == 0 and "spec check" in drafted.stdout
    same = yaml.safe_load(out.read_text()) == yaml.safe_load(printed.stdout)
    assert same, "--target named the column the guess found"
    check = run("spec", "check", str(out), "--json")
    assert check.returncode == 0, check.stderr
    names = {v["name"]: v for v in json.loads(check.stdout)["variables"]}
    assert names["air"]["canonical_unit"] == "L/h" and names["feed"]["role"] == "feed"
    inspect = run("inspect", "--spec", str(out), files[0], "--json")
    assert json.loads(inspect.stdout)[0]["batch_id"] == "N001"


def test_inspect_keeps_long_ids_whole_when_piped(tmp_path: Path, spec: DatasetSpec) -> None:
    path = write_simulated(tmp_path, spec, 1, "normal", seed=1, cfg=TINY)[0]
    path.write_text(path.read_text().replace("N001,", f"{LONG_ID},"))
    table = run("inspect", str(path), **NARROW)
    assert table.returncode == 0 and LONG_ID in table.stdout and "…" not in table.stdout
    rows = json.loads(run("inspect", str(path), "--json", **NARROW).stdout)
    assert rows[0]["batch_id"] == LONG_ID and rows[0]["rows"] == 289


def test_inspect_reports_an_unreadable_file_and_goes_on(tmp_path: Path, spec: DatasetSpec) -> None:
    good = write_simulated(tmp_path, spec, 1, "normal", seed=1, cfg=TINY)[0]
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = run("inspect", str(empty), str(good), "--json")
    assert result.returncode == 1
    bad, fine = json.loads(result.stdout)
    assert "not a readable CSV" in bad["problem"] and fine["batch_id"] == "N001"
    assert fine["problem"] is None


def test_drift_history_and_rollout_status_as_table_and_json(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    save_record(reports, DriftRecord(batch_id=LONG_ID, data_drift=True, drifted_columns=["ph"]))
    log = f"sqlite:///{tmp_path / 'predictions.db'}"
    reason = "challenger beats champion on 3 held-out batches (RMSE 1.20 vs 1.45)"
    start_rollout(engine_for(log), "harvest", "3", "4", reason)
    env = {
        "BIOPROCESSML_REPORTS_DIR": str(reports),
        "BIOPROCESSML_SERVING__PREDICTION_LOG_URL": log,
    }
    history = run("drift", "history", **env, **NARROW)
    assert history.returncode == 0, history.stderr
    assert LONG_ID in history.stdout and "trend plot" in history.stdout
    records = json.loads(run("drift", "history", "--json", **env).stdout)
    assert records[0]["batch_id"] == LONG_ID and records[0]["drifted_columns"] == ["ph"]
    status = run("rollout", "status", **env, **NARROW)
    assert reason in status.stdout and "…" not in status.stdout
    [change] = json.loads(run("rollout", "status", "--json", **env).stdout)
    assert (change["task"], change["challenger_version"], change["stage"]) == (
        "harvest",
        "4",
        "shadow",
    )


def test_quarantine_list_and_config_as_json(tmp_path: Path) -> None:
    folder = tmp_path / "quarantine" / "20260101-000000-bad"
    folder.mkdir(parents=True)
    item = Quarantined(quarantine_id=folder.name, file=f"{LONG_ID}.csv", sha256="0" * 64,
                       reasons=["time goes backwards", "ph: 3 values outside 5.5–8.5"])  # fmt: skip
    (folder / "reason.json").write_text(item.model_dump_json())
    env = {"BIOPROCESSML_DATA_DIR": str(tmp_path)}
    table = run("quarantine", "list", **env, **NARROW)
    assert f"{LONG_ID}.csv" in table.stdout and "time goes backwards" in table.stdout
    [listed] = json.loads(run("quarantine", "list", "--json", **env).stdout)
    assert listed["reasons"] == item.reasons
    config = json.loads(run("config", "--json").stdout)
    assert config["spec_path"] == str(DEFAULT_SPEC) and config["tracking_uri"].startswith("sqlite")
