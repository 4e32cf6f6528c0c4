"""The scorecard: every decision of a replay, per batch and in total, against what happened.

Per batch: the verdict, drift flags with their columns, the decisions, the champions that
answered, their error and interval coverage against the batch's own assays next to the naive
forecast. In total: false data-drift alarms on batches labelled normal (after warm-up), the delay
until each labelled change was flagged, champion error against the naive forecast over time,
rollouts and their outcomes with the canary answers behind each promotion, and the lowest
harvest lower bound served.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sqlalchemy import Engine

from bioprocessml.backtest.replay import Step
from bioprocessml.dataset import TIME
from bioprocessml.serving.prediction_log import truth_at
from bioprocessml.serving.rollout_store import all_rollouts, evidence_of, transitions
from models.retraining import GateOutcome

NORMAL = "normal"
WINDOW = 3  # batches over which a champion is compared with the naive forecast


class BatchScore(BaseModel):
    order: int
    file: str
    batch_id: str | None
    label: str
    verdict: str
    reason: str = ""
    warming_up: bool = False
    data_drift: bool = False
    columns: list[str] = []
    concept_alarm: bool = False
    error_ratio: float | None = None
    decision: str = ""
    retrain: str = ""
    rollout: list[str] = []
    champions: dict[str, str | None] = {}
    now_rmse: float | None = None
    now_naive_rmse: float | None = None
    now_coverage: float | None = None
    harvest_errors: dict[str, float] = {}
    harvest_naive_error: float | None = None
    harvest_covered: int = 0
    harvest_answers: int = 0
    harvest_lowest: float | None = None
    end_agrees: bool | None = None


class ChangeDetection(BaseModel):
    label: str
    first_batch: str
    flagged_at: str | None = None  # the first drift alarm (data or concept) on its own batches
    delay: int | None = None  # 1 = flagged on its first accepted batch
    data_drift_at: str | None = None
    data_drift_delay: int | None = None
    columns: list[str] = []  # the columns the first data-drift alarm named


class Totals(BaseModel):
    files: int
    accepted: int
    quarantined: int
    normal_after_warmup: int
    false_alarms: list[str]
    changes: list[ChangeDetection]
    worse_than_naive: dict[str, list[str]]  # since the champion went live
    worse_than_naive_recently: dict[str, list[str]]  # over its last WINDOW batches
    retrainings: int
    rollouts: list[str]
    promotions_without_canary: list[str]
    harvest_lowest: float | None
    end_agreement: str


def decision_text(step: Step) -> str:
    record = step.record
    if record is None:
        return ""
    if record.requested:
        return f"retrain {','.join(record.tasks)} ({record.kind})"
    return record.suppressed or ""


def answer_scores(step: Step, batch: pd.DataFrame, target: str, score: BatchScore) -> None:
    """The client's answers against the batch's own assays (interpolated for titer now, the
    last assay for the harvest)."""
    answered = [a for a in step.answers if a.response is not None]
    now = [
        (a.response.time_h, a.response.titer_now)
        for a in answered
        if a.response and a.response.titer_now
    ]
    if now:
        truth = truth_at(batch, target, "soft_sensor", pd.Series([t for t, _ in now]))
        ok = truth.notna().to_numpy()
        if ok.any():
            covered = [lo <= y <= hi for (_, ans), y, k in zip(now, truth, ok, strict=True) if k
                       for lo, hi in [(ans.lower, ans.upper)]]  # fmt: skip
            score.now_coverage = float(np.mean(covered))
    assays = batch[[TIME, target]].dropna()
    if assays.empty:
        return
    final = float(assays[target].iloc[-1])
    for a in answered:
        harvest = a.response.titer_at_harvest if a.response else None
        if harvest is None:
            continue
        score.harvest_errors[f"{a.fraction:.0%}"] = round(abs(harvest.mean - final), 4)
        score.harvest_answers += 1
        score.harvest_covered += int(harvest.lower <= final <= harvest.upper)
        now_answer = a.response.titer_now if a.response else None
        if a.fraction == 1.0 and now_answer is not None:
            score.end_agrees = harvest.lower <= now_answer.mean <= harvest.upper


def retrain_text(outcome: GateOutcome) -> str:
    """What a retraining decided for one task; a rejection says why (the gate's reason)."""
    version = f" v{outcome.version}" if outcome.version else ""
    text = f"{outcome.task}: {outcome.decision}{version} ({outcome.candidate})"
    return f"{text}: {outcome.reason}" if outcome.decision in ("rejected", "retired") else text


def score_step(step: Step, batch: pd.DataFrame | None, target: str) -> BatchScore:
    record = step.record
    score = BatchScore(
        order=step.order, file=step.file, batch_id=step.batch_id, label=step.label,
        verdict=step.verdict, reason=step.reasons[0] if step.reasons else "",
        decision=decision_text(step), champions=step.champions, rollout=step.rollout,
        retrain="; ".join(retrain_text(o) for o in step.retrain),
    )  # fmt: skip
    if record is not None:
        score.warming_up = bool(record.details.get("warming_up", not record.report))
        score.data_drift, score.columns = record.data_drift, record.drifted_columns
        score.concept_alarm, score.error_ratio = record.concept_alarm, record.error_ratio
        score.now_rmse, score.now_naive_rmse = record.batch_rmse, record.naive_rmse
    lows = [a.response.titer_at_harvest.lower for a in step.answers
            if a.response is not None and a.response.titer_at_harvest is not None]  # fmt: skip
    score.harvest_lowest = min(lows, default=None)  # what was served counts, whatever the verdict
    if batch is not None and step.verdict == "accepted":  # a quarantined file judges nothing
        answer_scores(step, batch, target, score)
        assays = batch[target].dropna()
        if step.naive_final is not None and len(assays):
            score.harvest_naive_error = round(abs(step.naive_final - float(assays.iloc[-1])), 4)
    return score


def changes_detected(scores: list[BatchScore]) -> list[ChangeDetection]:
    found = []
    for label in dict.fromkeys(s.label for s in scores if s.label not in (NORMAL, "")):
        mine = [s for s in scores if s.label == label and s.verdict == "accepted"]
        if not mine:
            continue
        change = ChangeDetection(label=label, first_batch=str(mine[0].batch_id))
        # only an alarm on one of its own batches detects a change: another change (or a
        # broken batch) arriving later must not be credited to it
        flagged = [i for i, s in enumerate(mine, 1) if s.data_drift or s.concept_alarm]
        if flagged:
            change.flagged_at, change.delay = str(mine[flagged[0] - 1].batch_id), flagged[0]
        drifted = [i for i, s in enumerate(mine, 1) if s.data_drift]
        if drifted:
            first = mine[drifted[0] - 1]
            change.data_drift_at, change.columns = str(first.batch_id), first.columns
            change.data_drift_delay = drifted[0]
        found.append(change)
    return found


def worse_than_naive(scores: list[BatchScore], recent: bool) -> dict[str, list[str]]:
    """Batches at which a live champion's mean error was above the naive forecast's on the same
    batches (titer now: RMSE on the assays; harvest: error of the 50 % forecast): `recent` over
    the last WINDOW batches it served (what the monitor alarms on), else over every batch since
    it went live (at least WINDOW) — is it, on the whole, worse than doing nothing?"""
    pairs = {
        "soft_sensor": [(s, s.now_rmse, s.now_naive_rmse) for s in scores],
        "harvest": [(s, s.harvest_errors.get("50%"), s.harvest_naive_error) for s in scores],
    }
    out: dict[str, list[str]] = {}
    for task, rows in pairs.items():
        seen = [(s, e, n) for s, e, n in rows if e is not None and n is not None]
        out[task] = []
        for i, (s, _, _) in enumerate(seen):
            mine = [
                (e, n)
                for b, e, n in seen[: i + 1]
                if b.champions.get(task) == s.champions.get(task)
            ]
            mine = mine[-WINDOW:] if recent else mine
            if len(mine) >= WINDOW and np.mean([e for e, _ in mine]) > np.mean(
                [n for _, n in mine]
            ):
                out[task].append(str(s.batch_id))
    return out


def rollout_lines(engine: Engine) -> tuple[list[str], list[str]]:
    """Each rollout's stage changes in one line, and promotions that no canary answer backed."""
    lines, unbacked = [], []
    for state in all_rollouts(engine):
        evidence = evidence_of(engine, state.id)
        canary = sum(e.canary_answers for e in evidence if e.stage == "canary")
        path = " → ".join(t.stage for t in transitions(engine) if t.rollout_id == state.id)
        lines.append(f"{state.task} v{state.challenger_version} vs v{state.champion_version}: "
                     f"{path} ({len(evidence)} batches, {canary} canary answers; {state.reason})")  # fmt: skip
        if state.stage == "promoted" and canary == 0:
            unbacked.append(f"{state.task} v{state.challenger_version}")
    return lines, unbacked


def totals(scores: list[BatchScore], steps: list[Step], engine: Engine) -> Totals:
    normal = [
        s for s in scores if s.label == NORMAL and s.verdict == "accepted" and not s.warming_up
    ]
    rollouts, unbacked = rollout_lines(engine)
    lows = [s.harvest_lowest for s in scores if s.harvest_lowest is not None]
    ends = [s.end_agrees for s in scores if s.end_agrees is not None]
    return Totals(
        files=len(scores), accepted=sum(s.verdict == "accepted" for s in scores),
        quarantined=sum(s.verdict == "quarantined" for s in scores),
        normal_after_warmup=len(normal),
        false_alarms=[str(s.batch_id) for s in normal if s.data_drift],
        changes=changes_detected(scores), worse_than_naive=worse_than_naive(scores, recent=False),
        worse_than_naive_recently=worse_than_naive(scores, recent=True),
        retrainings=sum(bool(step.retrain) for step in steps), rollouts=rollouts,
        promotions_without_canary=unbacked, harvest_lowest=min(lows) if lows else None,
        end_agreement=f"{sum(ends)} of {len(ends)} batches" if ends else "no answers at 100 %",
    )  # fmt: skip
