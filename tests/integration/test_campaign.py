"""A short demo campaign through the real servers, judged by its timeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioprocessml.settings import Serving, Settings
from bioprocessml.stack.campaign import CampaignPlan, demo_settings, run_campaign
from bioprocessml.stack.servers import down, free_port
from bioprocessml.stack.timeline import build_timeline


@pytest.mark.slow
def test_short_campaign_timeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "")  # the campaign points it at its own server
    base = Settings(
        state_dir=tmp_path / "state", prefect_api_url=f"http://127.0.0.1:{free_port()}/api",
        serving=Serving(port=free_port()), mlflow_ui_port=free_port(), watch_settle_seconds=0.5,
    )  # fmt: skip
    settings = demo_settings(base, quick=True)
    plan = CampaignPlan(normal=8, corrupt=2, changed=12, after_weak=6)
    try:
        report, seconds = run_campaign(settings, plan, print)
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
