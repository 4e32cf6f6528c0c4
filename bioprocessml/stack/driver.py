"""Driving the live chain one batch at a time: drop a file, wait for every decision it causes,
ask the service about the next batch, keep background load on it, and log what was dropped.

Every decision waits for the one before, so a campaign reaches the same decisions on a slow
machine as on a fast one (and as `bioprocessml backtest` on the same files), only later.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import BATCH_ID, write_batch
from bioprocessml.errors import BioprocessMLError
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.request import request_rows
from bioprocessml.serving.rollout_store import all_rollouts
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.stack.loadgen import LoadGenerator, LoadReport, Payload
from bioprocessml.stack.servers import admin_token
from models.registry import configure
from monitoring.history import MONITORING_EXPERIMENT, DriftRecord, record_path

T = TypeVar("T")
CUT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


class CampaignError(BioprocessMLError):
    """The campaign waited too long for a step of the chain (see the stack's logs)."""


def wait_for(probe: Callable[[], T | None], what: str, timeout: float, every: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(every)
    raise CampaignError(f"waited {timeout:.0f} s for {what}; see the logs in the state folder")


class Campaign:
    """Drops files and drives the clients; the phases are in `campaign.run_campaign`. A batch's
    questions are asked only once the previous file's verdict, drift check, any retraining it
    asked for and any rollout that retraining started are done."""

    def __init__(self, settings: Settings, wait_s: float, pause_s: float) -> None:
        self.settings, self.wait_s, self.pause_s = settings, wait_s, pause_s
        self.spec: DatasetSpec = load_spec(settings.spec_path)
        self.catalogue = Catalogue(settings.data_dir / "catalogue.db")
        self.load: LoadGenerator | None = None
        self.live: list[Payload] = []
        self.calls = CallCounter()
        self.started = time.time()

    # --- driving the chain -----------------------------------------------------------------
    def drop(self, path: Path) -> None:
        """Move a file into incoming/ as a transfer tool would, then wait until the chain has
        judged it and acted on every decision it caused."""
        incoming = self.settings.incoming_dir
        partial = incoming / f"{path.name}.part"
        shutil.copyfile(path, partial)
        partial.rename(incoming / path.name)
        entry = wait_for(
            lambda: next((e for e in self.catalogue.entries() if e.file == path.name), None),
            f"the verdict on {path.name}", self.wait_s, every=0.5,
        )  # fmt: skip
        if entry.verdict == "accepted" and entry.batch_id:
            self.settle(entry.batch_id)

    def settle(self, batch_id: str) -> None:
        """The batch's drift check, the retraining it asked for, the rollouts that started."""
        wait_for(lambda: monitoring_done(self.settings, batch_id),
                 f"the drift flow of {batch_id}", self.wait_s)  # fmt: skip
        path = record_path(self.settings.reports_dir, batch_id)
        record = DriftRecord.model_validate_json(path.read_text())
        if not record.requested:
            return
        reason = f"{record.kind} drift at batch {batch_id}"
        gates = wait_for(lambda: retrain_gates(self.settings, reason), f"the retraining ({reason})",
                         self.wait_s, every=2.0)  # fmt: skip
        for task, version in gates.challengers.items():
            self.rollout_begun(task, version)
        self.reload_service()  # a new or retired champion, too

    def rollout_begun(self, task: str, version: str) -> None:
        """The rollout is recorded and the service runs it (reloaded now, not at its next poll)."""
        wait_for(
            lambda: any(s.task == task and s.challenger_version == version
                        for s in all_rollouts(engine_for(self.settings.prediction_log_url))),
            f"the rollout of {task} version {version}", self.wait_s,
        )  # fmt: skip
        self.reload_service()

    def reload_service(self) -> None:
        """Make the service load what the registry names now (before the next questions)."""
        token = admin_token(self.settings)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.settings.serving.url}/admin/reload"
        wait_for(lambda: _post_status(url, headers) == 200, "the service to reload", self.wait_s)

    def run_batch(self, batch: pd.DataFrame, folder: Path) -> None:
        """While the batch runs the client asks about it (once per cut); then its file arrives."""
        batch_id = str(batch[BATCH_ID].iloc[0])
        end = float(batch["time"].max())
        payloads = [
            {"batch_id": batch_id, "rows": request_rows(batch, self.spec, f * end)}
            for f in CUT_FRACTIONS
        ]
        self.live = [as_load(p, self.spec) for p in payloads]
        if self.load is not None:
            for payload in payloads:
                self.calls.ask(self.settings.serving.url, payload)
        self.drop(write_batch(batch, folder / f"{batch_id}.csv", self.spec))

    def start_client(self) -> None:
        """Once a first champion serves: the questions about each batch, and two background
        clients calling every `client_pause_s` with the live batch's rows under another batch
        id (load that no finished batch scores, to show switches never fail a request)."""
        url = self.settings.serving.url
        wait_for(lambda: _status(f"{url}/readyz") == 200, "the service to be ready", self.wait_s)
        self.load = LoadGenerator(
            url, lambda i: self.live[i % len(self.live)], pause_s=self.pause_s
        ).start()

    def stop_client(self) -> LoadReport | None:
        if self.load is None:
            return None
        return self.calls.merged(self.load.stop())


def as_load(payload: Payload, spec: DatasetSpec) -> Payload:
    """The same rows under a batch id no file will carry: background load, never scored."""
    load_id = f"load-{payload['batch_id']}"
    column = spec.batch_id.column
    rows = [{**r, column: load_id} if column else r for r in payload["rows"]]
    return {"batch_id": load_id, "rows": rows}


class CallCounter:
    """The scored questions' outcomes, merged into the load report at the end."""

    def __init__(self) -> None:
        self.ok, self.failures, self.latencies = 0, [], []  # type: ignore[var-annotated]

    def ask(self, url: str, payload: Payload) -> None:
        start = time.perf_counter()
        try:
            response = httpx.post(f"{url}/predict", json=payload, timeout=60)
            failed = (
                None
                if response.status_code == 200
                else f"{response.status_code}: {response.text[:200]}"
            )
        except httpx.HTTPError as exc:
            failed = f"{type(exc).__name__}: {exc}"
        if failed:
            self.failures.append(failed)
        else:
            self.ok += 1
            self.latencies.append(time.perf_counter() - start)

    def merged(self, load: LoadReport) -> LoadReport:
        return load.model_copy(update={
            "sent": load.sent + self.ok + len(self.failures), "ok": load.ok + self.ok,
            "failed": load.failed + len(self.failures), "failures": load.failures + self.failures,
        })  # fmt: skip


def monitoring_done(settings: Settings, batch_id: str) -> bool:
    """The drift flow of the batch has ended: its last step logs the batch's monitoring run, so
    the rollout's decision on the batch is made by then."""
    import mlflow

    experiment = configure(settings, MONITORING_EXPERIMENT)
    runs = mlflow.search_runs([experiment], filter_string=f"tags.batch_id = '{batch_id}'",
                              output_format="list")  # fmt: skip
    return any(r.info.status == "FINISHED" for r in runs)


class Gates(BaseModel):
    challengers: dict[str, str]  # task → version


def retrain_gates(settings: Settings, reason: str) -> Gates | None:
    """Once the retraining run for `reason` has finished: its challengers (task → version)."""
    import mlflow

    experiment = configure(settings)
    runs = mlflow.search_runs([experiment], filter_string=f"tags.reason = '{reason}'",
                              output_format="list")  # fmt: skip
    done = [r for r in runs if r.info.status == "FINISHED"]
    if not done:
        return None
    tags = done[0].data.tags
    challengers = {}
    for key, text in tags.items():
        if key.startswith("gate.") and text.startswith("challenger v"):
            challengers[key.removeprefix("gate.")] = text.split()[1].removeprefix("v").rstrip(":")
    return Gates(challengers=challengers)


def _post_status(url: str, headers: dict[str, str]) -> int:
    try:
        return httpx.post(url, headers=headers, timeout=60).status_code
    except httpx.HTTPError:
        return 0


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


class DropLog:
    """The files dropped, in order, with their labels: a labels CSV for the backtest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("batch_id,label\n")

    def add(self, batch: pd.DataFrame, label: str) -> None:
        with self.path.open("a") as handle:
            handle.write(f"{batch[BATCH_ID].iloc[0]},{label}\n")

    def add_file(self, path: Path, label: str) -> None:
        with self.path.open("a") as handle:
            handle.write(f"{path.stem},{label}\n")
