"""Retraining flow: started by `bioprocess.drift.detected` (see prefect.yaml) or by hand."""

from __future__ import annotations

import mlflow
from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from bioprocessml.settings import Settings
from models.base import TASKS
from models.registry import configure
from tasks.train import (
    GateOutcome,
    LoggedCandidate,
    gate_and_register,
    prepare_split,
    train_and_log,
)


def task_runner(settings: Settings):  # type: ignore[no-untyped-def]
    """Candidates train concurrently: threads by default, Dask when configured."""
    if settings.training.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        workers = settings.training.max_workers
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=settings.training.max_workers)


@flow(name="retrain", log_prints=True)
def retrain_batches(reason: str = "manual", data_version: str | None = None) -> list[GateOutcome]:
    """Train every candidate for both tasks on the accepted data, gate, register, set aliases."""
    logger = get_run_logger()
    settings = Settings()
    # --- data at one DVC version ---
    split = prepare_split(data_version)
    experiment = configure(settings)
    parent = mlflow.MlflowClient().create_run(
        experiment,
        run_name=f"retrain ({reason})",
        tags={**split.lineage.tags(), "reason": reason},
    )
    # --- train candidates concurrently ---
    futures = {
        (task, name): train_and_log.submit(name, task, split, parent.info.run_id)
        for task in TASKS
        for name in settings.training.candidates
    }
    # --- offline gate per task ---
    outcomes = []
    for task in TASKS:
        results = {
            name: f.result(raise_on_failure=False) for (t, name), f in futures.items() if t == task
        }
        logged = [r for r in results.values() if isinstance(r, LoggedCandidate)]
        for name, failure in results.items():
            if not isinstance(failure, LoggedCandidate):
                logger.error("%s/%s failed and is left out of the gate: %s", task, name, failure)
        if not logged:
            raise RuntimeError(f"every {task} candidate failed; see the task runs")
        outcomes.append(gate_and_register(task, logged, split))
    client = mlflow.MlflowClient()
    for outcome in outcomes:
        version = f" v{outcome.version}" if outcome.version else ""
        client.set_tag(
            parent.info.run_id,
            f"gate.{outcome.task}",
            f"{outcome.decision}{version}: {outcome.reason}",
        )
    client.set_terminated(parent.info.run_id)
    logger.info("retrain done: %s", [(o.task, o.decision, o.version) for o in outcomes])
    return outcomes


# The deployment's entrypoint: the flow with the task runner chosen in settings.
retrain = retrain_batches.with_options(task_runner=task_runner(Settings()))
