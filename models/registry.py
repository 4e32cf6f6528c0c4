"""MLflow: every candidate wrapped as one pyfunc model, runs with lineage, and the registry's
aliases `champion`, `challenger`, `previous`, which the service follows."""

from __future__ import annotations

import subprocess
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel, PythonModel
from pydantic import BaseModel

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.settings import PROJECT_ROOT, Settings
from models.base import Candidate, Task

MODEL_NAMES: dict[str, str] = {
    "soft_sensor": "bioprocess-soft-sensor",
    "harvest": "bioprocess-harvest-forecast",
}
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
GATE_TAG = "gate.last"  # on a registered model: its latest gate decision, read by the service
RUNTIME_PACKAGES = ("numpy", "pandas", "scikit-learn", "torch", "gpytorch", "pydantic")


class Lineage(BaseModel):
    """What a model was made from; stored as tags on its run and its registered version."""

    data_version: str
    git_commit: str
    spec_sha256: str
    train_batches: list[str]
    holdout_batches: list[str]

    def tags(self) -> dict[str, str]:
        return {
            "lineage.data_version": self.data_version,
            "lineage.git_commit": self.git_commit,
            "lineage.spec_sha256": self.spec_sha256,
            "lineage.train_batches": ",".join(self.train_batches),
            "lineage.holdout_batches": ",".join(self.holdout_batches),
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Lineage:
        """The inverse of `tags()`: the lineage of a registered version."""
        values = {
            k.removeprefix("lineage."): v for k, v in tags.items() if k.startswith("lineage.")
        }
        lists = {
            key: values[key].split(",") if values.get(key) else []
            for key in ("train_batches", "holdout_batches")
        }
        return cls.model_validate({**values, **lists})


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def split_histories(frame: pd.DataFrame) -> list[pd.DataFrame]:
    """One history per batch id (rows sorted by time), in order of first appearance."""
    return [
        group.sort_values(TIME).reset_index(drop=True)
        for _, group in frame.groupby(BATCH_ID, sort=False)
    ]


class BatchPredictor(PythonModel):
    """Input: canonical rows of one or more batches so far. Output: one row per batch with the
    prediction at its last time and the 95 % interval."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        histories = split_histories(model_input)
        frame = self.candidate.predict(histories).frame()
        frame.insert(0, BATCH_ID, [str(h[BATCH_ID].iloc[0]) for h in histories])
        frame.insert(1, TIME, [float(h[TIME].iloc[-1]) for h in histories])
        return frame


def configure(settings: Settings, experiment: str | None = None) -> str:
    """Point MLflow at the configured tracking URI and return the experiment's id (created if
    new, with artifacts in the state folder, not ./mlruns of whatever directory a worker runs in)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    name = experiment or settings.experiment
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if not settings.tracking_uri.startswith("http"):
        location = (settings.state_dir / "mlartifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created concurrently by another run
        return str(client.get_experiment_by_name(name).experiment_id)  # type: ignore[union-attr]


def log_candidate(
    candidate: Candidate, metrics: dict[str, float], lineage: Lineage,
    example: pd.DataFrame, plots: list[Path], experiment_id: str, parent_run_id: str | None = None,
) -> tuple[str, str]:  # fmt: skip
    """Log one trained candidate as its own run; returns (run id, model URI)."""
    name = f"{candidate.task}-{candidate.name}"
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=name,
        parent_run_id=parent_run_id,
        nested=parent_run_id is not None,
    ) as run:
        mlflow.set_tags({**lineage.tags(), "task": candidate.task, "candidate": candidate.name})
        params = {
            "task": candidate.task,
            "candidate": candidate.name,
            **getattr(candidate, "params_", {}),
        }
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({f"holdout_{k}": v for k, v in metrics.items() if v == v})
        mlflow.log_dict(lineage.model_dump(), "lineage.json")
        for plot in plots:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=BatchPredictor(candidate), input_example=example,
            pip_requirements=[f"{p}=={package_version(p)}" for p in RUNTIME_PACKAGES],
        )  # fmt: skip
    return run.info.run_id, info.model_uri


def register(model_uri: str, task: Task, lineage: Lineage, run_id: str) -> str:
    """Register a logged model under its task's name; the version carries the lineage tags."""
    version = mlflow.register_model(
        model_uri, MODEL_NAMES[task], tags={**lineage.tags(), "run_id": run_id}
    )
    return str(version.version)


def alias_version(task: Task, alias: str) -> ModelVersion | None:
    try:
        return MlflowClient().get_model_version_by_alias(MODEL_NAMES[task], alias)
    except MlflowException:
        return None


def set_alias(task: Task, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(MODEL_NAMES[task], alias, version)


def delete_alias(task: Task, alias: str) -> None:
    if alias_version(task, alias) is not None:
        MlflowClient().delete_registered_model_alias(MODEL_NAMES[task], alias)


def promote(task: Task, version: str) -> None:
    """`version` becomes champion; the old champion becomes `previous`."""
    old = alias_version(task, CHAMPION)
    if old is not None and str(old.version) != version:
        set_alias(task, PREVIOUS, str(old.version))
    set_alias(task, CHAMPION, version)
    challenger = alias_version(task, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        delete_alias(task, CHALLENGER)


def load_alias(task: Task, alias: str) -> PyFuncModel:
    return mlflow.pyfunc.load_model(f"models:/{MODEL_NAMES[task]}@{alias}")
