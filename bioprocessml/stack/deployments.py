"""The chain's deployments on the stack's Prefect server: the process work pool with its
`monitoring` queue, the deployments of prefect.yaml and the reconcile interval."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import PROJECT_ROOT, Settings

WORK_POOL = "bioprocessml"
MONITORING_QUEUE = "monitoring"
RECONCILE_DEPLOYMENT = "reconcile/every-interval"
BIN = Path(sys.executable).parent


class StackError(BioprocessMLError):
    """A server of the stack did not start or a set-up command failed."""


def run_prefect(settings: Settings, *args: str, cwd: Path = PROJECT_ROOT) -> str:
    from bioprocessml.stack.servers import stack_env

    done = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", *args], cwd=cwd, env=stack_env(settings),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise StackError(f"prefect {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout


def deploy_flows(settings: Settings) -> None:
    """Create the process work pool, its `monitoring` queue (one run at a time, oldest first)
    and the deployments of prefect.yaml; all idempotent. Skipped when this server already has
    the deployments of this very prefect.yaml (a second `up` need not wait for it)."""
    stamp = settings.state_dir / "deployed.sha256"
    digest = hashlib.sha256((PROJECT_ROOT / "prefect.yaml").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest and _deployed(settings):
        return
    stamp.unlink(missing_ok=True)
    run_prefect(settings, "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
    try:
        run_prefect(settings, "work-queue", "create", MONITORING_QUEUE, "--pool", WORK_POOL,
                    "--limit", "1")  # fmt: skip
    except StackError as exc:
        if "already exists" not in str(exc):
            raise
    run_prefect(settings, "deploy", "--all")
    schedule_reconcile(settings)
    stamp.write_text(digest)


def _deployed(settings: Settings) -> bool:
    body = {"deployments": {"name": {"any_": [RECONCILE_DEPLOYMENT.split("/")[1]]}}}
    try:
        response = httpx.post(
            f"{settings.prefect_api_url}/deployments/filter", json=body, timeout=10
        )
        return response.status_code == 200 and bool(response.json())
    except httpx.HTTPError:
        return False


def schedule_reconcile(settings: Settings) -> None:
    """Give the reconcile deployment the configured interval (prefect.yaml says 60 s)."""
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import IntervalSchedule
    from prefect.settings import PREFECT_API_URL, temporary_settings

    wanted = timedelta(seconds=settings.runtime.reconcile_seconds)
    with (
        temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}),
        get_client(sync_client=True) as client,
    ):
        deployment = client.read_deployment_by_name(RECONCILE_DEPLOYMENT)
        current = client.read_deployment_schedules(deployment.id)
        if [getattr(s.schedule, "interval", None) for s in current] == [wanted]:
            return
        for schedule in current:
            client.delete_deployment_schedule(deployment.id, schedule.id)
        schedules: list[Any] = [(IntervalSchedule(interval=wanted), True)]
        client.create_deployment_schedules(deployment.id, schedules)
