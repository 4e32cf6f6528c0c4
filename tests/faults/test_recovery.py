"""kill -9 of the flow runner during ingest and during retraining: after `up` the runs it held
are marked crashed and redone once, every file has exactly one verdict, every registered model
version has its lineage and metrics, the aliases point to complete versions, and the service
answers throughout."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import mlflow
from mlflow import MlflowClient

from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack import processes
from bioprocessml.stack.servers import up
from models.registry import CHALLENGER, CHAMPION, MODEL_NAMES, PREVIOUS, alias_version
from tests.faults.conftest import cheap_files, entries_for, kill9, put, valid_files
from tests.stack import flow_runs, prefect_post, wait_until


def running(stack: Settings, deployment: str) -> list[dict[str, Any]]:
    return [r for r in flow_runs(stack, deployment) if r["state_type"] == "RUNNING"]


def crashed_and_redone(stack: Settings, deployment: str, run_id: str) -> dict[str, Any] | None:
    runs = flow_runs(stack, deployment)
    crashed = [r for r in runs if r["id"] == run_id and r["state_type"] == "CRASHED"]
    redo = [r for r in runs if f"redo-of:{run_id}" in r["tags"]]
    return redo[0] if crashed and len(redo) == 1 else None


SETTLE_S = 2.0


def stopped_while_running(stack: Settings, deployment: str) -> list[dict[str, Any]]:
    """Stop (SIGSTOP) the runner at a moment it holds runs of `deployment`, and return them: a
    stopped runner can start no report, so each must be found crashed after the kill unless a
    report it had already sent lands. (Picking a running run and then killing let a one-second
    ingest end in between, under load: no crash to find. A completion sent just before the stop
    can still land after the server said "running": one CI run found its victim completed.)"""
    record = processes.read_record(stack.state_dir, "runner")
    assert record is not None
    for _ in range(20):
        wait_until(lambda: running(stack, deployment)[:1], 180, f"a {deployment} run")
        os.kill(record.pid, signal.SIGSTOP)
        time.sleep(SETTLE_S)  # let reports already on their way land
        held = running(stack, deployment)
        if held:
            return held
        os.kill(record.pid, signal.SIGCONT)
    raise AssertionError(f"the runner never held a {deployment} run when stopped")


def test_runner_killed_during_ingest(
    stack: Settings, spec: DatasetSpec, tmp_path: Path, recovery_times: dict[str, float]
) -> None:
    files = valid_files(tmp_path, spec, 3, 7601) + cheap_files(tmp_path, "k", 5)
    names = {p.name for p in files}
    for path in files:
        put(path, stack.incoming_dir)
    held = stopped_while_running(stack, "on-arrival")
    killed = kill9(stack, "runner")
    restarted = time.monotonic()
    up(stack, ui=False)
    found = wait_until(lambda: (e := entries_for(stack, names)) and len(e) == len(names) and e,
                       400, "every verdict after the restart")  # fmt: skip
    recovery_times["runner killed during ingest: restart to all verdicts (s)"] = round(
        time.monotonic() - restarted, 1
    )
    assert sorted(e.file for e in found) == sorted(names), "exactly one verdict per file"

    def redone() -> list[dict[str, Any]] | None:
        """The redos, once every held run has its end (crashed with one redo, or completed by a
        report sent before the stop) and at least one was crashed."""
        ends = {r["id"]: r["state_type"] for r in flow_runs(stack, "on-arrival")}
        redos = [crashed_and_redone(stack, "on-arrival", r["id"]) for r in held]
        ended = all(
            redo or ends.get(r["id"]) == "COMPLETED" for r, redo in zip(held, redos, strict=True)
        )
        return [redo for redo in redos if redo] if ended else None

    redos = wait_until(redone, 120, f"the runs held by pid {killed}: crashed, each redone once")
    assert all("redo" in redo["tags"] for redo in redos)


def probe_service(url: str, stop: threading.Event, failures: list[str]) -> None:
    while not stop.wait(0.5):
        try:
            code = httpx.get(f"{url}/livez", timeout=5).status_code
            if code != 200:
                failures.append(f"/livez {code}")
        except httpx.HTTPError as exc:
            failures.append(repr(exc))


def test_runner_killed_during_retraining(
    stack: Settings, spec: DatasetSpec, tmp_path: Path, recovery_times: dict[str, float]
) -> None:
    catalogue = Catalogue(stack.data_dir / "catalogue.db")
    accepted = [e for e in catalogue.entries() if e.verdict == "accepted"]
    if len(accepted) < 4:  # the fault suite run alone: give retraining some data
        files = valid_files(tmp_path, spec, 4, 7701)
        for path in files:
            put(path, stack.incoming_dir)
        wait_until(lambda: len(entries_for(stack, {p.name for p in files})) == 4, 300, "data")
    stop, failures = threading.Event(), []
    prober = threading.Thread(target=probe_service, args=(stack.serving.url, stop, failures))
    prober.start()
    try:
        [deployment] = prefect_post(stack, "deployments/filter",
                                    {"deployments": {"name": {"any_": ["on-drift"]}}})  # fmt: skip
        run = prefect_post(stack, f"deployments/{deployment['id']}/create_flow_run",
                           {"parameters": {"reason": "fault suite: kill -9 during retraining"}})  # fmt: skip
        wait_until(lambda: [r for r in running(stack, "on-drift") if r["id"] == run["id"]], 300,
                   "the retraining run")  # fmt: skip
        time.sleep(3)  # well into training
        kill9(stack, "runner")
        restarted = time.monotonic()
        up(stack, ui=False)
        redo = wait_until(lambda: crashed_and_redone(stack, "on-drift", run["id"]), 120, "redo")
        wait_until(lambda: [r for r in flow_runs(stack, "on-drift")
                            if r["id"] == redo["id"] and r["state_type"] == "COMPLETED"],
                   600, "the redone retraining")  # fmt: skip
        recovery_times["runner killed during retraining: restart to retrained (s)"] = round(
            time.monotonic() - restarted, 1
        )
    finally:
        stop.set()
        prober.join()
    assert not failures, failures[:5]
    assert_registry_complete(stack)


def assert_registry_complete(stack: Settings) -> None:
    """Every version has its lineage and its run's metrics; every alias names such a version
    (the gate may leave a task without a champion: none beat the naive forecast)."""
    mlflow.set_tracking_uri(stack.tracking_uri)
    client = MlflowClient()
    for task, name in MODEL_NAMES.items():
        for version in client.search_model_versions(f"name = '{name}'"):
            assert version.tags.get("lineage.data_version"), (name, version.version)
            assert client.get_run(version.tags["run_id"]).data.metrics, (name, version.version)
        for alias in (CHAMPION, CHALLENGER, PREVIOUS):  # a task may have no champion yet
            version = alias_version(task, alias)  # type: ignore[arg-type]
            assert version is None or version.tags.get("lineage.data_version"), (task, alias)
