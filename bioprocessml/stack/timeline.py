"""What happened, in order, read back from where each stage records it: the catalogue (verdicts),
the drift records, the MLflow retraining runs (gate decisions) and the rollout transitions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import mlflow
from pydantic import BaseModel

from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_store import transitions
from bioprocessml.settings import Settings
from models.registry import configure
from monitoring.history import load_history


class TimelineRow(BaseModel):
    at: datetime
    batch: str = ""
    event: str
    verdict: str = ""
    model: str = ""
    decision: str = ""


def _utc(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def build_timeline(settings: Settings) -> list[TimelineRow]:
    rows = [
        TimelineRow(
            at=e.received_at,
            batch=e.batch_id or e.file,
            event="file arrived",
            verdict=e.verdict if e.verdict != "quarantined" else f"quarantined: {e.reasons[0]}",
        )
        for e in Catalogue(settings.data_dir / "catalogue.db").entries()
    ]
    for r in load_history(settings.reports_dir):
        if not (r.data_drift or r.concept_alarm or r.requested):
            continue
        found = [k for k, on in (("data", r.data_drift), ("concept", r.concept_alarm)) if on]
        rows.append(TimelineRow(
            at=r.checked_at, batch=r.batch_id, event="drift check",
            verdict=f"{'+'.join(found)} drift {','.join(r.drifted_columns)}".strip() if found else "",
            model=f"champion v{r.champion_version}" if r.champion_version else "",
            decision=f"retrain requested ({r.kind})" if r.requested else (r.suppressed or ""),
        ))  # fmt: skip
    experiment = configure(settings)
    for run in mlflow.search_runs([experiment], filter_string="tags.reason != ''",
                                  output_format="list"):  # fmt: skip
        tags = run.data.tags
        gates = [
            f"{k.removeprefix('gate.')}: {v}"
            for k, v in sorted(tags.items())
            if k.startswith("gate.")
        ]
        rows.append(TimelineRow(
            at=datetime.fromtimestamp(run.info.start_time / 1000, UTC), event="retrain",
            verdict=tags["reason"], decision="; ".join(":".join(g.split(":")[:2]) for g in gates),
        ))  # fmt: skip
    for t in transitions(engine_for(settings.prediction_log_url)):
        rows.append(TimelineRow(
            at=_utc(t.at), batch=t.batch_id or "", event=f"rollout {t.task}",
            verdict=t.stage, model=f"challenger v{t.challenger_version}", decision=t.reason,
        ))  # fmt: skip
    return sorted(rows, key=lambda row: _utc(row.at))


def format_timeline(rows: list[TimelineRow]) -> str:
    """Plain fixed-width lines (readable in any terminal, and in a log): seconds from the first
    event, batch, event, verdict, model version, decision."""
    head = f"{'t (s)':>6}  {'batch':<7} {'event':<20} {'verdict':<34} {'model':<15} decision"
    lines = [head, "-" * len(head)]
    for r in rows:
        seconds = (_utc(r.at) - _utc(rows[0].at)).total_seconds()
        lines.append(f"{seconds:6.0f}  {r.batch:<7} {r.event:<20} {r.verdict[:34]:<34} "
                     f"{r.model:<15} {r.decision[:110]}")  # fmt: skip
    return "\n".join(lines)


def decision_log(settings: Settings, batches: set[str] | None = None) -> list[str]:
    """Every automatic decision read back from a state folder's stores, without times or
    numbers: verdicts, drift flags and retrain requests, gate decisions, rollout stages. Two runs
    over the same files (the live stack and `bioprocessml backtest`) must give the same list.
    `batches`: only decisions about these batches (and the retrainings and rollouts they caused)."""
    mine = (lambda b: True) if batches is None else (lambda b: b in batches)
    lines = [f"{e.batch_id or e.file}: {e.verdict}" for e in
             Catalogue(settings.data_dir / "catalogue.db").entries()
             if mine(e.batch_id or e.file) or mine(Path(e.file).stem)]  # a file's name, too  # fmt: skip
    for r in load_history(settings.reports_dir):
        if not mine(r.batch_id):
            continue
        ask = f"retrain {','.join(r.tasks)} ({r.kind})" if r.requested else (r.suppressed or "-")
        lines.append(f"{r.batch_id}: data drift {r.data_drift} {sorted(r.drifted_columns)}, "
                     f"concept {r.concept_alarm}, {ask}")  # fmt: skip
    experiment = configure(settings)
    runs = mlflow.search_runs([experiment], filter_string="tags.reason != ''", output_format="list")
    started: set[tuple[str, str]] = set()  # (task, version) of challengers these retrainings made
    for run in sorted(runs, key=lambda r: r.info.start_time):
        batch = run.data.tags["reason"].rsplit(" ", 1)[-1]
        if mine(batch):
            gates = {k.removeprefix("gate."): v.split(":")[0]
                     for k, v in run.data.tags.items() if k.startswith("gate.")}  # fmt: skip
            started |= {(k, v.split()[1].removeprefix("v")) for k, v in gates.items()
                        if v.startswith("challenger v")}  # fmt: skip
            lines.append(f"retrain ({run.data.tags['reason']}): "
                         + "; ".join(f"{k}: {v}" for k, v in sorted(gates.items())))  # fmt: skip
    lines += [f"{t.batch_id}: rollout {t.task} v{t.challenger_version} {t.stage}"
              for t in transitions(engine_for(settings.prediction_log_url))
              if (mine(t.batch_id) if t.batch_id else (t.task, t.challenger_version) in started)]  # fmt: skip
    return lines
