"""The demo campaign: the whole chain live, driven only by batch files dropped into incoming/.

normal batches → bootstrap champion; corrupt files → quarantine; a process change (a new raw-
material lot with lower yields) → drift → retraining → shadow → canary → promotion; then a
deliberately weak challenger (the champion's answers + a bias, injected as a fault through the
`bioprocess.model.challenger` event) → rollback. A client keeps calling /predict meanwhile; each
batch is asked about at several times while it "runs", before its file arrives.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from bioprocessml.events import MODEL_CHALLENGER, ChallengerPayload, emit, model_resource
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_store import (
    Transition,
    active_rollouts,
    transitions,
)
from bioprocessml.settings import Settings
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec
from bioprocessml.stack.driver import Campaign, CampaignError, DropLog
from bioprocessml.stack.loadgen import LoadReport
from bioprocessml.stack.servers import down, up
from models.base import Task
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


def demo_settings(settings: Settings, quick: bool) -> Settings:
    """The demo keeps all its state in the state folder, and moves faster than the defaults: a
    rollout needs 3 batches for canary (5 for a verdict at 95 %), half of the batches are canary
    (so users get the challenger's answers within a few batches) and retraining cools down for
    one batch. The first model trains after 12 batches (their 12 are the drift reference);
    `quick` trains after 6 (of 10) with fewer candidates, and drift counts from 6 batches."""
    state = settings.state_dir
    thresholds = settings.thresholds.model_copy(update={
        "retrain_cooldown_batches": 1, "bootstrap_batches": 6 if quick else 12,
        "drift_min_reference": 6 if quick else settings.thresholds.drift_min_reference,
    })  # fmt: skip
    training = settings.training.model_copy(update={"candidates": ["pls", "gp"]} if quick else {})
    rollout = settings.rollout.model_copy(update={"min_batches": 3, "canary_share": 0.5})
    observability = settings.observability.model_copy(update={"local_receiver": True})
    return settings.model_copy(update={
        "data_dir": state / "data", "reports_dir": state / "reports", "thresholds": thresholds,
        "training": training, "rollout": rollout, "observability": observability,  # issue 18
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
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Prefect reads its settings once per process: in a process that imported it before (a test
    # session), an environment variable set now would not reach the event client.
    with temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}):
        sent = emit(MODEL_CHALLENGER, model_resource(MODEL_NAMES[task]), payload)
    if sent is None:
        raise CampaignError(f"the challenger event was not sent to {settings.prefect_api_url}")
    return version


def soft_sensor_ready(settings: Settings) -> bool:
    configure(settings)
    return alias_version("soft_sensor", CHAMPION) is not None


def rollouts(settings: Settings) -> tuple[list[Transition], bool]:
    """Every stage change so far, and whether a rollout is still active."""
    engine = engine_for(settings.prediction_log_url)
    return transitions(engine), bool(active_rollouts(engine))


def run_campaign(
    settings: Settings, plan: CampaignPlan, say: Callable[[str], None]
) -> tuple[LoadReport | None, float]:
    """Run every phase through the live stack; returns the client's report and the seconds.
    Every file dropped is listed in `<state>/campaign/labels.csv`, in order, with its label
    (`normal`, `corrupt`, `raw-material`): `bioprocessml backtest` can replay the same history."""
    reset(settings)
    say("starting the stack: Prefect server, worker, MLflow UI, BentoML service, watcher…")
    up(settings)
    campaign = Campaign(settings, plan.wait_s, plan.client_pause_s)
    folder = settings.state_dir / "campaign"
    labels = DropLog(folder / "labels.csv")
    normal, changed = source_batches(plan)
    try:
        # --- 1: normal batches → bootstrap champion ---
        say(f"{plan.normal} normal batches (a first champion trains after "
            f"{settings.thresholds.bootstrap_batches})")  # fmt: skip
        for batch in normal:
            campaign.run_batch(batch, folder / "normal")
            labels.add(batch, "normal")
            if campaign.load is None and soft_sensor_ready(settings):
                campaign.start_client()
        if campaign.load is None:
            raise CampaignError("no soft-sensor champion after the normal batches: no candidate "
                                "beat the naive forecast (see the MLflow retraining run)")  # fmt: skip
        # --- 2: corrupt files → quarantine ---
        say(f"{plan.corrupt} corrupt files")
        for path in corrupt_files(settings, campaign.spec, plan):
            campaign.drop(path)
            labels.add_file(path, "corrupt")
        # --- 3: process change → drift → retrain → shadow → canary → promotion ---
        say("process change: a raw-material lot with lower yields")
        rest = iter(changed)
        for _, batch in zip(range(plan.changed), rest, strict=False):
            campaign.run_batch(batch, folder / "changed")
            labels.add(batch, "raw-material")
            done, active = rollouts(settings)
            if any(t.stage == "promoted" for t in done) and not active:
                break  # every challenger of the process change has been judged
        # --- 4: a deliberately weak challenger → rollback ---
        version = inject_weak_challenger(settings, "soft_sensor", plan.weak_bias)
        campaign.rollout_begun("soft_sensor", version)
        say(f"weak challenger: soft-sensor version {version} ({plan.weak_bias:+g} g/L)")

        def judged() -> bool:
            done, _ = rollouts(settings)
            return any(t.stage == "rolled_back" and t.challenger_version == version for t in done)

        for _, batch in zip(range(plan.after_weak), rest, strict=False):
            campaign.run_batch(batch, folder / "changed")
            labels.add(batch, "raw-material (weak challenger live)")
            if judged():
                break
        if not judged():
            raise CampaignError(f"the weak challenger v{version} was not rolled back in "
                                f"{plan.after_weak} batches")  # fmt: skip
    finally:
        report = campaign.stop_client()
    return report, time.time() - campaign.started
