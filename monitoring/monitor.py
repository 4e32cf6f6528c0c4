"""Check one accepted batch: data drift against the champion's batches, the champion's error on
the batch's labels (concept drift, and against the naive forecast), and whether to retrain."""

from __future__ import annotations

import logging

from bioprocessml.ingest.accepted import accepted_ids, read_accepted, window_ids
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_store import active_rollouts
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec, load_spec
from models.base import TASKS, Task
from models.features import FeatureSpec
from models.registry import CHAMPION, alias_version
from monitoring.champion import Champion, interval_coverage, load_champion
from monitoring.concept import LiveError, assess_concept, batch_error, concept_reason
from monitoring.dashboard import add_batch_snapshot
from monitoring.data_drift import check_data_drift
from monitoring.drift_limits import spec_ranges
from monitoring.history import DriftRecord, load_history, save_record
from monitoring.retrain_policy import decide_retrain
from monitoring.usefulness import harvest_score, soft_sensor_score, worse_than_naive

log = logging.getLogger(__name__)


def champions_now() -> dict[Task, bool]:
    """Which tasks have a champion (the registry is configured by `load_champion`)."""
    return {task: alias_version(task, CHAMPION) is not None for task in TASKS}


def check_concept(
    record: DriftRecord,
    champion: Champion,
    history: list[DriftRecord],
    settings: Settings,
    spec: DatasetSpec,
) -> None:
    frame = read_accepted(settings, record.batch_id)
    error = batch_error(champion.predict, frame, spec.target)
    if error is None:
        return
    record.batch_rmse = error
    covered, points = interval_coverage(champion, frame, spec.target)  # issue 18
    record.coverage, record.coverage_points = (covered if points else None), points
    t = settings.thresholds
    live = [
        LiveError(batch_id=r.batch_id, error=r.batch_rmse, data_drift=r.data_drift)
        for r in history
        if r.champion_version == champion.version and r.batch_rmse is not None
    ] + [LiveError(batch_id=record.batch_id, error=error, data_drift=record.data_drift)]
    verdict = assess_concept(
        [champion.validation_rmse], live, burn_in=t.concept_burn_in, k=t.cusum_k, h=t.cusum_h,
        min_log_spread=t.concept_min_log_spread,
    )  # fmt: skip
    record.cusum, record.concept_alarm, record.error_ratio = (
        verdict.cusum,
        verdict.alarm,
        verdict.ratio,
    )
    if verdict.alarm:
        record.reasons.append(f"champion v{champion.version}: {concept_reason(verdict, t.cusum_h)}")


def check_usefulness(
    record: DriftRecord, champion: Champion | None, history: list[DriftRecord],
    settings: Settings, spec: DatasetSpec,
) -> None:  # fmt: skip
    """Each task's live champion against the naive forecast on this batch, and over its last
    `naive_window` batches: worse than doing nothing is an alarm for that task."""
    frame = read_accepted(settings, record.batch_id)
    if champion is not None and record.batch_rmse is not None:
        soft = soft_sensor_score(settings, champion.version, champion.train_batches,
                                 record.batch_rmse, frame, spec)  # fmt: skip
        if soft is not None:
            record.live.append(soft)
            record.naive_rmse = soft.naive
    harvest = harvest_score(settings, frame, spec)
    if harvest is not None:
        record.live.append(harvest)
    window = settings.thresholds.naive_window
    for score in record.live:
        past = [s for r in history for s in r.live if s.task == score.task]
        useless = worse_than_naive([*past, score], window)
        if useless is not None:
            record.worse_than_naive.append(score.task)
            record.reasons.append(
                f"{score.task} champion v{score.version} is worse than the naive forecast on its "
                f"last {window} batches: error {useless[0]:.3g} vs {useless[1]:.3g}"
            )


def check_data(
    record: DriftRecord, reference_ids: list[str], settings: Settings, spec: DatasetSpec
) -> None:
    t = settings.thresholds
    window = [
        read_accepted(settings, i) for i in window_ids(settings, record.batch_id, t.drift_window)
    ]
    report = settings.reports_dir / f"{record.batch_id}.html"
    result = check_data_drift(
        read_accepted(settings, record.batch_id), window,
        [read_accepted(settings, i) for i in reference_ids], FeatureSpec.from_spec(spec),
        p_value=t.drift_p_value, drift_share=t.drift_share, report_html=report,
        limit_level=t.drift_limit_level, min_reference=t.drift_min_reference,
        tolerance=t.drift_tolerance, confirm=t.drift_confirm_batches, ranges=spec_ranges(spec),
    )  # fmt: skip
    record.data_drift, record.drift_share = result.drifted, result.drift_share
    record.drifted_columns = [c.column for c in result.columns if c.drifted]
    record.report = str(report) if report.is_file() else None
    record.details = {
        "window": result.window_batches, "feature_scores": result.feature_scores,
        "warming_up": result.warming_up, "reference_batches": result.reference_batches,
    }  # fmt: skip
    if result.drifted or result.warming_up:
        record.reasons.extend(result.reasons)


def monitor_batch(settings: Settings, batch_id: str, pending: bool = False) -> DriftRecord:
    """Check `batch_id`, decide, and save its record (the caller emits the event if asked)."""
    spec = load_spec(settings.spec_path)
    champion = load_champion(settings)
    history = [r for r in load_history(settings.reports_dir) if r.batch_id != batch_id]
    ids = accepted_ids(settings)
    record = DriftRecord(batch_id=batch_id, champion_version=champion.version if champion else None)
    before = ids[: ids.index(batch_id)] if batch_id in ids else ids
    reference = champion.train_batches + champion.holdout_batches if champion else before
    known = set(ids)
    check_data(record, [b for b in reference if b in known], settings, spec)
    if champion is not None:
        check_concept(record, champion, history, settings, spec)
    check_usefulness(record, champion, history, settings, spec)
    t = settings.thresholds
    decision = decide_retrain(
        champions=champions_now(), accepted=len(before) + 1, data_drift=record.data_drift,
        concept_alarm=record.concept_alarm, reasons=record.reasons, history=history, pending=pending,
        task_alarms=dict.fromkeys(record.worse_than_naive, "naive"),
        rollout_tasks=frozenset(active_rollouts(engine_for(settings.prediction_log_url))),
        bootstrap_batches=t.bootstrap_batches, cooldown=t.retrain_cooldown_batches,
    )  # fmt: skip
    record.requested, record.kind, record.suppressed = (
        decision.request,
        decision.kind,
        decision.suppressed,
    )
    record.tasks, record.deferred = list(decision.tasks), list(decision.deferred)
    record.reasons = decision.reasons
    save_record(settings.reports_dir, record)
    try:  # issue 18: the Evidently monitoring project (a view: never blocks the decision)
        add_batch_snapshot(settings, record)
    except Exception:
        log.exception("%s: Evidently snapshot not added; the check itself stands", batch_id)
    return record
