"""Retraining flow: started by `bioprocess.drift.detected` (see prefect.yaml) or by hand."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from bioprocessml.settings import Settings
from models.base import TASKS, Task
from models.retraining import GateOutcome, LoggedCandidate, close_parent_run, open_parent_run
from models.training import candidates_for
from tasks.train import gate_and_register, prepare_split, train_and_log


def task_runner(settings: Settings):  # type: ignore[no-untyped-def]
    """Candidates train concurrently: threads by default, Dask when configured."""
    if settings.training.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        workers = settings.training.max_workers
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=settings.training.max_workers)


def parse_tasks(tasks: str) -> list[Task]:
    """`soft_sensor,harvest` (the drift event's list) → tasks; empty means both."""
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known: {', '.join(TASKS)}")
    return [t for t in TASKS if t in names] or list(TASKS)


def parse_versions(items: str) -> dict[str, str]:
    """`harvest:3,soft_sensor:2` (the drift event's champions worse than naive) → task → version."""
    pairs = [item.strip().partition(":") for item in items.split(",") if item.strip()]
    bad = [a + b + c for a, b, c in pairs if not b or a not in TASKS]
    if bad:
        raise ValueError(f"expected task:version, got {bad}; tasks: {', '.join(TASKS)}")
    return {task: version for task, _, version in pairs}


@flow(name="retrain", log_prints=True)
def retrain_batches(
    reason: str = "manual", data_version: str | None = None, tasks: str = "",
    worse_than_naive: str = "",
) -> list[GateOutcome]:  # fmt: skip
    """Train every candidate of the asked tasks (default both) on the accepted data, gate,
    register, set aliases. `worse_than_naive`: champions (`task:version`) the monitor found
    worse than the naive forecast live; they retire unless a candidate beats the naive forecast."""
    logger = get_run_logger()
    settings = Settings()
    chosen = parse_tasks(tasks)
    worse = parse_versions(worse_than_naive)
    # --- data at one DVC version, held-out batches unseen by the champions ---
    split = prepare_split(data_version, chosen)
    parent = open_parent_run(settings, split, reason)
    # --- train candidates concurrently ---
    futures = {
        (task, name): train_and_log.submit(name, task, split, parent)
        for task in chosen
        for name in candidates_for(task, settings)
    }
    # --- offline gate per task ---
    outcomes = []
    for task in chosen:
        results = {
            name: f.result(raise_on_failure=False) for (t, name), f in futures.items() if t == task
        }
        logged = [r for r in results.values() if isinstance(r, LoggedCandidate)]
        for name, failure in results.items():
            if not isinstance(failure, LoggedCandidate):
                logger.error("%s/%s failed and is left out of the gate: %s", task, name, failure)
        if not logged:
            raise RuntimeError(f"every {task} candidate failed; see the task runs")
        outcomes.append(gate_and_register(task, logged, split, worse.get(task)))
    close_parent_run(parent, outcomes)
    logger.info("retrain done: %s", [(o.task, o.decision, o.version) for o in outcomes])
    return outcomes


# The deployment's entrypoint: the flow with the task runner chosen in settings.
retrain = retrain_batches.with_options(task_runner=task_runner(Settings()))
