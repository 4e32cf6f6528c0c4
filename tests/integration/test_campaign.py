"""A short demo campaign through the real servers, judged by its timeline; then the backtest
replays the same files offline and must reach the same decisions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioprocessml.backtest.run import run_backtest
from bioprocessml.settings import Observability, Serving, Settings
from bioprocessml.stack.campaign import CampaignPlan, demo_settings, run_campaign
from bioprocessml.stack.servers import down, free_port
from bioprocessml.stack.timeline import build_timeline, decision_log
from tests.integration.conftest import wait_until


def notified(path: Path) -> set[str]:
    lines = path.read_text().splitlines() if path.is_file() else []
    return {json.loads(line).get("event") for line in lines}


def replayable(settings: Settings, into: Path) -> tuple[set[str], Path]:
    """The files the campaign dropped before its injected weak challenger, and their labels."""
    folder = settings.state_dir / "campaign"
    rows = (folder / "labels.csv").read_text().splitlines()
    kept = [r for r in rows[1:] if "weak challenger" not in r]
    stems = {r.split(",")[0] for r in kept}
    into.mkdir(parents=True)
    for path in folder.rglob("*.csv"):
        if path.stem in stems:
            shutil.copy(path, into / path.name)
    labels = into.parent / "labels.csv"
    labels.write_text("\n".join([rows[0], *kept]) + "\n")
    return stems, labels


@pytest.mark.slow
@pytest.mark.timeout(3000)
def test_short_campaign_timeline_and_its_backtest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "")  # the campaign points it at its own server
    base = Settings(
        state_dir=tmp_path / "state", prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
        serving=Serving(port=free_port()), mlflow_ui_port=free_port(), watch_settle_seconds=0.5,
        observability=Observability(
            evidently_port=free_port(), prometheus_port=free_port(), exporter_port=free_port(),
            receiver_port=free_port(),
        ),
    )  # fmt: skip
    settings = demo_settings(base, quick=True)
    plan = CampaignPlan(normal=8, corrupt=2, changed=12, after_weak=6)
    try:
        report, seconds = run_campaign(settings, plan, print)
        # Issue 18: the automations' webhooks reached the demo's receiver (sent by the Prefect
        # server shortly after each event, so wait before stopping it).
        sent = settings.state_dir / "notifications.jsonl"
        wanted = {"bioprocess.batch.quarantined", "bioprocess.model.promoted",
                  "bioprocess.model.rolled_back"}  # fmt: skip
        wait_until(lambda: wanted <= notified(sent), timeout=120, what=f"webhooks {wanted}")
    finally:
        down(settings)
    rows = build_timeline(settings)
    print(f"campaign: {seconds:.0f} s, /predict: {report}")
    for r in rows:
        print(r.model_dump_json())

    verdicts = [r.verdict for r in rows if r.event == "file arrived"]
    assert sum(v == "accepted" for v in verdicts) >= plan.normal
    assert sum(v.startswith("quarantined") for v in verdicts) == plan.corrupt
    retrains = [r for r in rows if r.event == "retrain"]
    assert "champion v1" in retrains[0].decision  # bootstrap
    drift = [r for r in rows if r.event == "drift check" and r.batch.startswith("RM")]
    assert any("drift" in r.verdict for r in drift), drift
    stages = [(r.model, r.verdict) for r in rows if r.event == "rollout soft_sensor"]
    promoted = [m for m, stage in stages if stage == "promoted"]
    assert promoted, stages
    rolled_back = [m for m, stage in stages if stage == "rolled_back"]
    assert rolled_back and rolled_back[-1] != promoted[0], stages
    assert report is not None and report.failed == 0 and report.sent > 20, report
    from monitoring.dashboard import snapshot_batches  # one Evidently snapshot per check
    from monitoring.history import load_history

    snapshots = snapshot_batches(settings)  # a task retry may check a batch twice
    assert set(snapshots) == {r.batch_id for r in load_history(settings.reports_dir)}

    # The same files, offline: the same verdicts, drift flags, retrainings, gates and rollouts.
    batches, labels = replayable(settings, tmp_path / "replay" / "files")
    offline = base.model_copy(update={"state_dir": tmp_path / "user"})
    offline = offline.model_copy(update={
        "thresholds": settings.thresholds, "training": settings.training, "rollout": settings.rollout,
    })  # fmt: skip
    kept = tmp_path / "backtest-state"
    run_backtest(offline, labels.parent / "files", tmp_path / "scorecard", labels, "labels", kept)
    replayed = offline.model_copy(update={
        "state_dir": kept, "data_dir": kept / "data", "reports_dir": kept / "reports",
    })  # fmt: skip
    assert decision_log(replayed) == decision_log(settings, batches)
