"""The demo campaign: the whole chain live, driven only by batch files dropped into incoming/.

normal batches → bootstrap champion; corrupt files → quarantine; a process change (a new raw-
material lot with lower yields) → drift → retraining → shadow → canary → promotion; then a
deliberately weak challenger (the champion's answers + a bias, injected as a fault through the
`bioprocess.model.challenger` event) → rollback. A client keeps calling /predict meanwhile; each
batch is asked about at several times while it "runs", before its file arrives.
"""

from __future__ import annotations

import os
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
from bioprocessml.events import MODEL_CHALLENGER, ChallengerPayload, emit, model_resource
from bioprocessml.ingest.catalogue import Catalogue, Entry
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.request import request_rows
from bioprocessml.serving.rollout_store import Transition, active_rollouts, transitions
from bioprocessml.settings import Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec, load_spec
from bioprocessml.stack.loadgen import LoadGenerator, LoadReport, Payload
from bioprocessml.stack.servers import down, up
from models.base import TASKS, Task
from models.biased import BiasedModel
from models.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAMES,
    Lineage,
    alias_version,
    configure,
    load_alias,
    log_candidate,
    register,
    set_alias,
)
from monitoring.history import record_path

T = TypeVar("T")
CUT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


class CampaignPlan(BaseModel):
    normal: int = 20
    corrupt: int = 3
    changed: int = 14  # most batches after the process change, while waiting for promotion
    after_weak: int = 8  # batches to judge the weak challenger (5 are needed at least)
    weak_bias: float = 1.0  # g/L added to the weak challenger's answers
    duration_h: float = 72.0  # shorter than a real run, to keep the demo quick
    online_interval_min: float = 10.0
    seed: int = 2026
    wait_s: float = 600.0
    client_pause_s: float = 0.2

    @property
    def sim(self) -> SimConfig:
        return SimConfig(duration_h=self.duration_h, online_interval_min=self.online_interval_min)


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
    """Drops files and drives the client; the phases are in `run_campaign`."""

    def __init__(self, settings: Settings, plan: CampaignPlan) -> None:
        self.settings, self.plan = settings, plan
        self.spec: DatasetSpec = load_spec(settings.spec_path)
        self.catalogue = Catalogue(settings.data_dir / "catalogue.db")
        self.client: LoadGenerator | None = None
        self.live: list[Payload] = []
        self.in_flight: str | None = None
        self.monitored: list[str] = []
        self.lag = 3  # before any rollout; 1 once rollouts are judged on each batch
        self.started = time.time()

    # --- driving the chain -----------------------------------------------------------------
    def drop(self, path: Path) -> None:
        """Move a file into incoming/ as a transfer tool would. First the previous file's verdict
        and the monitoring of the batch `lag` before it are awaited: batches arrive no faster
        than the chain judges them."""
        accepted = self.settle()
        if accepted is not None and accepted.verdict == "accepted" and accepted.batch_id:
            self.monitored.append(accepted.batch_id)
        if len(self.monitored) > self.lag:
            behind = self.monitored[-1 - self.lag]
            record = record_path(self.settings.reports_dir, behind)
            wait_for(record.is_file, f"the drift check of {behind}", self.plan.wait_s)
        incoming = self.settings.incoming_dir
        partial = incoming / f"{path.name}.part"
        shutil.copyfile(path, partial)
        partial.rename(incoming / path.name)
        self.in_flight = path.name

    def settle(self) -> Entry | None:
        """Wait for the verdict on the file dropped last."""
        name, self.in_flight = self.in_flight, None
        if name is None:
            return None
        return wait_for(
            lambda: next((e for e in self.catalogue.entries() if e.file == name), None),
            f"the verdict on {name}", self.plan.wait_s, every=0.5,
        )  # fmt: skip

    def run_batch(self, batch: pd.DataFrame, folder: Path) -> None:
        """While the batch runs the client asks about it; then its file arrives."""
        batch_id = str(batch[BATCH_ID].iloc[0])
        end = float(batch["time"].max())
        self.live = [
            {"batch_id": batch_id, "rows": request_rows(batch, self.spec, f * end)}
            for f in CUT_FRACTIONS
        ]
        if self.client is not None:
            client = self.client
            wait_for(lambda: client.answered(batch_id) >= len(CUT_FRACTIONS),
                     f"answers for {batch_id}", 120, every=0.1)  # fmt: skip
        self.drop(write_batch(batch, folder / f"{batch_id}.csv", self.spec))

    def start_client(self) -> None:
        """Once the first champion serves: two clients, each calling every `client_pause_s`
        about the live batch (paced, so the 2 cores are left to the pipeline's flows)."""
        url = self.settings.serving.url
        wait_for(
            lambda: _status(f"{url}/readyz") == 200, "the service to be ready", self.plan.wait_s
        )
        self.client = LoadGenerator(
            url, lambda i: self.live[i % len(self.live)], pause_s=self.plan.client_pause_s
        ).start()

    def stop_client(self) -> LoadReport | None:
        return self.client.stop() if self.client else None


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def demo_settings(settings: Settings, quick: bool) -> Settings:
    """The demo keeps all its state in the state folder, and moves faster than the defaults: a
    rollout needs 3 batches for canary (5 for a verdict at 95 %) and retraining cools down for
    one batch. The first model trains after 12 batches: after 8, its error on 3 held-out batches
    was too optimistic a reference and the concept-drift CUSUM fired on normal batches. `quick`
    trains after 6 batches (of 10) with fewer candidates."""
    state = settings.state_dir
    thresholds = settings.thresholds.model_copy(
        update={"retrain_cooldown_batches": 1, "bootstrap_batches": 6 if quick else 12}
    )
    training = settings.training.model_copy(update={"candidates": ["pls", "gp"]} if quick else {})
    return settings.model_copy(update={
        "data_dir": state / "data", "reports_dir": state / "reports", "thresholds": thresholds,
        "training": training, "rollout": settings.rollout.model_copy(update={"min_batches": 3}),
    })  # fmt: skip


def reset(settings: Settings) -> None:
    """Stop what a previous run left and start from an empty state folder (all state is in it)."""
    down(settings)
    for folder in (settings.state_dir, settings.data_dir, settings.reports_dir):
        if folder.exists():
            shutil.rmtree(folder)


def source_batches(plan: CampaignPlan) -> tuple[list[pd.DataFrame], list[pd.DataFrame]]:
    normal = simulate(plan.normal, "normal", seed=plan.seed, cfg=plan.sim)
    changed = simulate(
        plan.changed + plan.after_weak, "raw-material", seed=plan.seed + 1,
        start=plan.normal + 1, cfg=plan.sim,
    )  # fmt: skip
    return normal, changed


def corrupt_files(settings: Settings, spec: DatasetSpec, plan: CampaignPlan) -> list[Path]:
    return write_simulated(
        settings.state_dir / "campaign" / "corrupt", spec, plan.corrupt, "corrupt",
        seed=plan.seed + 2, start=900, cfg=plan.sim,
    )  # fmt: skip


def inject_weak_challenger(settings: Settings, task: Task, bias: float) -> str:
    """Register the champion's model with its answers shifted by `bias` and announce it as a
    challenger: a fault injected on purpose, which the rollout must catch."""
    experiment = configure(settings)
    champion = load_alias(task, CHAMPION)
    weak = BiasedModel(champion.unwrap_python_model().candidate, bias)
    lineage = Lineage.from_tags(alias_version(task, CHAMPION).tags)  # type: ignore[union-attr]
    example = champion.input_example
    run_id, uri = log_candidate(weak, {}, lineage, example, [], experiment)
    version = register(uri, task, lineage, run_id)
    set_alias(task, CHALLENGER, version)
    reason = f"demo: deliberately weak challenger ({bias:+g} g/L on the champion's answers)"
    payload = ChallengerPayload(
        task=task, model=MODEL_NAMES[task], version=version, run_id=run_id,
        candidate=weak.name, reason=reason,
    )  # fmt: skip
    emit(MODEL_CHALLENGER, model_resource(MODEL_NAMES[task]), payload)
    return version


def champions_ready(settings: Settings) -> bool:
    configure(settings)
    return all(alias_version(task, CHAMPION) is not None for task in TASKS)


def rollouts(settings: Settings) -> tuple[list[Transition], bool]:
    """Every stage change so far, and whether a rollout is still active."""
    engine = engine_for(settings.prediction_log_url)
    return transitions(engine), bool(active_rollouts(engine))


def run_campaign(
    settings: Settings, plan: CampaignPlan, say: Callable[[str], None]
) -> tuple[LoadReport | None, float]:
    """Run every phase through the live stack; returns the client's report and the seconds."""
    os.environ["PREFECT_API_URL"] = settings.prefect_api_url  # for the one injected event
    reset(settings)
    say("starting the stack: Prefect server, worker, MLflow UI, BentoML service, watcher…")
    up(settings)
    campaign = Campaign(settings, plan)
    folder = settings.state_dir / "campaign"
    normal, changed = source_batches(plan)
    try:
        # --- 1: normal batches → bootstrap champion ---
        say(f"{plan.normal} normal batches (a first champion trains after "
            f"{settings.thresholds.bootstrap_batches})")  # fmt: skip
        for batch in normal:
            campaign.run_batch(batch, folder / "normal")
            if campaign.client is None and champions_ready(settings):
                campaign.start_client()
        wait_for(lambda: champions_ready(settings), "the first champions", plan.wait_s)
        if campaign.client is None:
            campaign.start_client()
        # --- 2: corrupt files → quarantine ---
        say(f"{plan.corrupt} corrupt files")
        for path in corrupt_files(settings, campaign.spec, plan):
            campaign.drop(path)
        campaign.settle()
        # --- 3: process change → drift → retrain → shadow → canary → promotion ---
        say("process change: a raw-material lot with lower yields")
        campaign.lag = 1
        rest = iter(changed)
        for _, batch in zip(range(plan.changed), rest, strict=False):
            campaign.run_batch(batch, folder / "changed")
            done, active = rollouts(settings)
            if any(t.stage == "promoted" for t in done) and not active:
                break  # every challenger of the process change has been judged
        # --- 4: a deliberately weak challenger → rollback ---
        version = inject_weak_challenger(settings, "soft_sensor", plan.weak_bias)
        say(f"weak challenger: soft-sensor version {version} ({plan.weak_bias:+g} g/L)")

        def judged() -> bool:
            done, _ = rollouts(settings)
            return any(t.stage == "rolled_back" and t.challenger_version == version for t in done)

        for _, batch in zip(range(plan.after_weak), rest, strict=False):
            campaign.run_batch(batch, folder / "changed")
            if judged():
                break
        campaign.settle()
        say("waiting for the monitoring flows to score the last batches…")
        wait_for(judged, "the weak challenger's rollback", plan.wait_s, every=2.0)
    finally:
        report = campaign.stop_client()
    return report, time.time() - campaign.started
