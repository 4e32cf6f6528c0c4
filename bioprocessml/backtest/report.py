"""The scorecard written out: Markdown (timeline + totals), JSON, a plot and an MLflow run."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from bioprocessml.backtest.scorecard import BatchScore, Totals
from bioprocessml.settings import Settings

EXPERIMENT = "bioprocessml-backtest"


class Scorecard(BaseModel):
    source: str
    spec: str
    seconds: float
    batches: list[BatchScore]
    totals: Totals


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _clip(text: str, width: int) -> str:
    """A table cell's text, cut visibly (the whole text is in scorecard.json)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def timeline_markdown(batches: list[BatchScore]) -> str:
    head = ("| # | batch | label | verdict | data drift (columns) | concept | decision | retrain | "
            "rollout | champions (now/harvest) | now RMSE (naive) | now cov | harvest err 50 % "
            "(naive) | harvest cov |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for b in batches:
        drift = (
            "warming up"
            if b.warming_up
            else ("yes: " + ", ".join(b.columns[:4]) if b.data_drift else "no")
        )
        if b.data_drift and len(b.columns) > 4:
            drift += f" (+{len(b.columns) - 4})"
        champs = "/".join(b.champions.get(t) or "-" for t in ("soft_sensor", "harvest"))
        verdict = b.verdict if b.verdict != "quarantined" else f"quarantined: {_clip(b.reason, 90)}"
        cov = f"{b.harvest_covered}/{b.harvest_answers}" if b.harvest_answers else "-"
        lines.append(
            f"| {b.order} | {b.batch_id or b.file} | {b.label} | {verdict} | {drift} | "
            f"{'alarm' if b.concept_alarm else _f(b.error_ratio, 2)} | {_clip(b.decision, 70)} | "
            f"{b.retrain} | {'; '.join(_clip(r, 60) for r in b.rollout)} | {champs} | "
            f"{_f(b.now_rmse)} ({_f(b.now_naive_rmse)}) | {_f(b.now_coverage, 2)} | "
            f"{_f(b.harvest_errors.get('50%'))} ({_f(b.harvest_naive_error)}) | {cov} |"
        )
    return "\n".join(lines)


def totals_markdown(t: Totals) -> str:
    changes = [
        f"  - **{c.label}** from {c.first_batch}: "
        + (f"first alarm at {c.flagged_at} (batch {c.delay} of the change)" if c.flagged_at
           else "never flagged")
        + (f"; data drift at {c.data_drift_at} (batch {c.data_drift_delay}), columns: "
           f"{', '.join(c.columns)}" if c.data_drift_at else "; no data drift")
        for c in t.changes
    ]  # fmt: skip
    worse = [f"  - {task}: since it went live {', '.join(ids) or 'never'}; over its last 3 batches "
             f"{', '.join(t.worse_than_naive_recently[task]) or 'never'}"
             for task, ids in t.worse_than_naive.items()]  # fmt: skip
    return "\n".join([
        f"- files {t.files}: {t.accepted} accepted, {t.quarantined} quarantined",
        f"- false data-drift alarms on normal batches after warm-up: **{len(t.false_alarms)}** of "
        f"{t.normal_after_warmup} ({', '.join(t.false_alarms) or 'none'})",
        "- process changes:", *(changes or ["  none labelled"]),
        "- champion worse than the naive forecast (mean error on the batches it served):", *worse,
        f"- retrainings: {t.retrainings}",
        "- rollouts:", *([f"  - {r}" for r in t.rollouts] or ["  none"]),
        f"- promotions without canary answers: {', '.join(t.promotions_without_canary) or 'none'}",
        f"- lowest harvest lower bound served: {_f(t.harvest_lowest)}",
        f"- harvest forecast at 100 % agrees with titer now within its interval: {t.end_agreement}",
    ])  # fmt: skip


def write_scorecard(card: Scorecard, out: Path) -> list[Path]:
    """scorecard.md, scorecard.json and scorecard.png in `out`."""
    from bioprocessml.backtest.plot import plot_scorecard

    out.mkdir(parents=True, exist_ok=True)
    md = out / "scorecard.md"
    md.write_text(
        f"# Backtest scorecard\n\nSource `{card.source}`, spec `{card.spec}`, "
        f"{len(card.batches)} files replayed in {card.seconds / 60:.1f} min.\n\n"
        f"## Totals\n\n{totals_markdown(card.totals)}\n\n![scorecard](scorecard.png)\n\n"
        f"## Timeline\n\n{timeline_markdown(card.batches)}\n"
    )
    js = out / "scorecard.json"
    js.write_text(json.dumps(card.model_dump(mode="json"), indent=2))
    png = plot_scorecard(card.batches, out / "scorecard.png")
    return [md, js, png]


def log_scorecard(settings: Settings, card: Scorecard, files: list[Path]) -> str:
    """One MLflow run in the user's tracking store (experiment `bioprocessml-backtest`)."""
    import mlflow

    from models.registry import configure

    experiment = configure(settings, EXPERIMENT)
    t = card.totals
    with mlflow.start_run(experiment_id=experiment, run_name=f"backtest {card.source}") as run:
        mlflow.set_tags({"source": card.source, "spec": card.spec})
        mlflow.log_metrics({
            "files": t.files, "accepted": t.accepted, "quarantined": t.quarantined,
            "false_alarms": len(t.false_alarms), "retrainings": t.retrainings,
            "seconds": card.seconds,
        })  # fmt: skip
        for change in t.changes:
            if change.delay is not None:
                mlflow.log_metric(f"delay_{change.label}", change.delay)
        for path in files:
            mlflow.log_artifact(str(path), artifact_path="backtest")
    return str(run.info.run_id)
