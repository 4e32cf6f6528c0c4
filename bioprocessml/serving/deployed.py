"""Which models the service runs: per task the `champion` alias and, while a rollout is active,
its challenger and stage. The service swaps a whole `Deployment` at once, so a request sees
one consistent set of models, and a switch never interrupts a request."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_decision import Stage
from bioprocessml.serving.rollout_store import active_rollouts
from bioprocessml.settings import Settings
from models.base import TASKS, Task
from models.online import answers_online
from models.registry import CHAMPION, GATE_TAG, MODEL_NAMES, alias_version, configure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wanted:
    """What should run for one task: versions and rollout stage (compared to detect changes)."""

    champion: str | None
    challenger: str | None = None
    stage: Stage | None = None
    rollout_id: int | None = None
    reason: str | None = None  # why there is no champion (the latest gate decision)


@dataclass(frozen=True)
class Slot:
    task: Task
    version: str
    model: PyFuncModel
    online: Any = None  # the candidate, when it answers from a feature view (models.online)

    @property
    def name(self) -> str:
        return MODEL_NAMES[self.task]


@dataclass(frozen=True)
class TaskModels:
    wanted: Wanted
    champion: Slot | None
    challenger: Slot | None


@dataclass(frozen=True)
class Deployment:
    tasks: dict[Task, TaskModels] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """At least one task can answer (a task without a champion answers 503 with why)."""
        return any(m.champion is not None for m in self.tasks.values())

    def wanted(self) -> dict[Task, Wanted]:
        return {task: models.wanted for task, models in self.tasks.items()}


def wanted_now(settings: Settings) -> dict[Task, Wanted]:
    """Read the registry aliases and the active rollouts."""
    configure(settings)
    active = active_rollouts(engine_for(settings.prediction_log_url))
    out: dict[Task, Wanted] = {}
    for task in TASKS:
        champion = alias_version(task, CHAMPION)
        rollout = active.get(task)
        out[task] = Wanted(
            champion=str(champion.version) if champion else None,
            challenger=rollout.challenger_version if rollout else None,
            stage=rollout.stage if rollout else None,
            rollout_id=rollout.id if rollout else None,
            reason=None if champion else no_champion_reason(task),
        )
    return out


def no_champion_reason(task: Task) -> str:
    """Why a task has no champion: the latest gate decision recorded on its registered model."""
    try:
        tags = MlflowClient().get_registered_model(MODEL_NAMES[task]).tags
    except MlflowException:
        tags = {}
    gate = tags.get(GATE_TAG)
    if gate is None:
        return f"no {task} champion yet: the first batches still train"
    return f"no {task} champion: the last retraining's gate said: {gate}"


def online_candidate(model: PyFuncModel) -> Any:
    """The candidate inside a pyfunc model if it answers from a feature view, else None."""
    try:
        candidate = getattr(model.unwrap_python_model(), "candidate", None)
    except Exception:  # not a python model (another flavour): answered from the rows
        return None
    return candidate if answers_online(candidate) else None


class ModelCache:
    """Loaded pyfunc models by (task, version); a promoted challenger is not loaded twice."""

    def __init__(self) -> None:
        self._models: dict[tuple[Task, str], tuple[PyFuncModel, Any]] = {}

    def slot(self, task: Task, version: str | None) -> Slot | None:
        if version is None:
            return None
        key = (task, version)
        if key not in self._models:
            import mlflow.pyfunc

            log.info("loading %s version %s", MODEL_NAMES[task], version)
            model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAMES[task]}/{version}")
            self._models[key] = (model, online_candidate(model))
        model, online = self._models[key]
        return Slot(task, version, model, online)

    def keep_only(self, deployment: Deployment) -> None:
        live = {
            (s.task, s.version)
            for m in deployment.tasks.values()
            for s in (m.champion, m.challenger)
            if s is not None
        }
        self._models = {k: v for k, v in self._models.items() if k in live}


def build_deployment(cache: ModelCache, wanted: dict[Task, Wanted]) -> Deployment:
    """Load whatever is not loaded yet; everything else is reused."""
    return Deployment({
        task: TaskModels(w, cache.slot(task, w.champion), cache.slot(task, w.challenger))
        for task, w in wanted.items()
    })  # fmt: skip
