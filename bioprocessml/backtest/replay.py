"""The replay: each file, in arrival order, goes through what the live chain does with it.

Per file: while the batch "runs", a client asks for predictions at 25/50/75/100 % of its time
(answered by the deployed models exactly as the service answers them, shadow and canary
included); then the file arrives (validation → accepted or quarantined); an accepted batch is
checked for drift, scores the live rollouts, and may start a retraining whose challengers begin a
rollout. Where the live chain emits an event, the replay calls the next stage directly.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import TIME, load_batch
from bioprocessml.errors import BioprocessMLError
from bioprocessml.ingest.accepted import read_accepted
from bioprocessml.ingest.arrival import ingest_file
from bioprocessml.ingest.watcher import file_sha256
from bioprocessml.serving import rollout
from bioprocessml.serving.answering import Answerer, Unavailable
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.deployed import ModelCache, build_deployment, wanted_now
from bioprocessml.serving.request import PredictResponse
from bioprocessml.serving.rollout_store import active_rollouts, transitions
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec, load_spec
from models.base import TASKS
from models.registry import CHAMPION, Lineage, alias_version, configure
from models.retraining import GateOutcome, retrain
from monitoring.history import DriftRecord
from monitoring.monitor import monitor_batch

log = logging.getLogger(__name__)
CUT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


class Answer(BaseModel):
    """What the replayed client was told about a batch at one point of its run."""

    fraction: float
    response: PredictResponse | None = None
    refused: str | None = None


class Step(BaseModel):
    """Everything that happened around one arrived file."""

    order: int
    file: str
    label: str
    batch_id: str | None = None
    verdict: str
    reasons: list[str] = []
    champions: dict[str, str | None] = {}
    answers: list[Answer] = []
    record: DriftRecord | None = None
    rollout: list[str] = []
    retrain: list[GateOutcome] = []
    began: list[str] = []
    naive_final: float | None = None  # the naive harvest forecast when the batch ran


def backtest_settings(base: Settings, state: Path, spec_path: Path) -> Settings:
    """All of the replay's state in `state`: data, DVC remote, MLflow, prediction log, reports;
    no admin token (nothing to notify) and the user's thresholds, training and rollout rules."""
    state.mkdir(parents=True, exist_ok=True)
    serving = base.serving.model_copy(update={"admin_token": None, "prediction_log_url": None})
    return base.model_copy(update={
        "state_dir": state, "data_dir": state / "data", "reports_dir": state / "reports",
        "spec_path": spec_path, "mlflow_tracking_uri": None, "dvc_remote": None,
        "serving": serving,
    }).prepare()  # fmt: skip


class Replay:
    """One backtest run over a state folder; `step` replays one file."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spec: DatasetSpec = load_spec(settings.spec_path)
        self.engine = engine_for(settings.prediction_log_url)
        self.cache = ModelCache()
        self.answerer = Answerer(settings, self.spec, self.engine, self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """What the service would load now (it follows the registry and the rollouts)."""
        self.deployment = build_deployment(self.cache, wanted_now(self.settings))
        self.cache.keep_only(self.deployment)

    def champions(self) -> dict[str, str | None]:
        configure(self.settings)
        found = {task: alias_version(task, CHAMPION) for task in TASKS}
        return {task: str(v.version) if v else None for task, v in found.items()}

    def naive_final(self) -> float | None:
        """Mean final titer of the harvest champion's training batches: its naive rival."""
        version = alias_version("harvest", CHAMPION)
        if version is None:
            return None
        finals = []
        for batch_id in Lineage.from_tags(version.tags).train_batches:
            assays = read_accepted(self.settings, batch_id)[self.spec.target].dropna()
            finals += [float(assays.iloc[-1])] if len(assays) else []
        return float(sum(finals) / len(finals)) if finals else None

    def ask(self, batch: pd.DataFrame) -> list[Answer]:
        """The client: the batch's rows up to each cut, answered as the service answers. Rows
        without a readable time are not sent (a plant system could not place them); a cut
        with no rows is refused, as the service refuses an empty request."""
        batch = batch[batch[TIME].notna()]
        if batch.empty:
            return [Answer(fraction=f, refused="no row has a readable time") for f in CUT_FRACTIONS]
        start, end = float(batch[TIME].iloc[0]), float(batch[TIME].iloc[-1])
        answers = []
        for fraction in CUT_FRACTIONS:
            frame = batch[batch[TIME] <= start + fraction * (end - start) + 1e-9]
            if frame.empty:
                answers.append(Answer(fraction=fraction, refused="no rows up to this point"))
                continue
            try:
                response, shadows = self.answerer.answer(self.deployment, frame, uuid.uuid4().hex)
            except Unavailable as exc:
                answers.append(Answer(fraction=fraction, refused=str(exc)))
                continue
            for shadow in shadows:
                shadow()
            answers.append(Answer(fraction=fraction, response=response))
        return answers

    def step(self, order: int, path: Path, label: str) -> Step:
        try:
            batch: pd.DataFrame | None = load_batch(path, self.spec)
        except BioprocessMLError:
            batch = None  # unreadable: the gate will say why; nobody asked about it
        step = Step(
            order=order, file=path.name, label=label, verdict="", champions=self.champions()
        )
        if batch is not None:
            step.answers = self.ask(batch)
            step.naive_final = self.naive_final()
        self.arrive(path, step)
        if step.verdict == "accepted" and step.batch_id is not None:
            self.after_acceptance(step)
        return step

    def arrive(self, path: Path, step: Step) -> None:
        incoming = self.settings.incoming_dir
        shutil.copyfile(path, incoming / path.name)
        result = ingest_file(path.name, self.settings, self.spec, file_sha256(incoming / path.name))
        step.batch_id, step.verdict, step.reasons = result.batch_id, result.verdict, result.reasons

    def after_acceptance(self, step: Step) -> None:
        """The drift flow (check, then score the rollouts), then a retraining if asked for."""
        assert step.batch_id is not None
        before = len(transitions(self.engine))
        step.record = monitor_batch(self.settings, step.batch_id, pending=False)
        rollout.score_batch(self.settings, step.batch_id)
        step.rollout = [f"{t.task} v{t.challenger_version}: {t.stage} ({t.reason})"
                        for t in transitions(self.engine)[before:]]  # fmt: skip
        if step.record.requested:
            reason = f"{step.record.kind} drift at batch {step.batch_id}"
            live = frozenset(active_rollouts(self.engine))
            step.retrain = retrain(self.settings, reason, None, step.record.tasks, live,
                                   step.record.worse_champions())  # fmt: skip
            for outcome in step.retrain:
                if outcome.decision == "challenger" and outcome.version is not None:
                    rollout.begin(self.settings, outcome.task, outcome.version, outcome.reason)  # type: ignore[arg-type]
                    step.began.append(f"{outcome.task} v{outcome.version}")
        self.refresh()


def replay(
    settings: Settings, files: list[tuple[Path, str]], on_step: Callable[[Step], None]
) -> list[Step]:
    """Replay `files` (path, label) in the given order."""
    replayer = Replay(settings)
    steps = []
    for order, (path, label) in enumerate(files, start=1):
        steps.append(replayer.step(order, path, label))
        on_step(steps[-1])
    return steps
