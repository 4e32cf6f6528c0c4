"""Check one accepted batch: data drift against the champion's training batches, the
champion's error on the batch's labels (concept drift), and whether to ask for retraining."""

from __future__ import annotations

import pandas as pd

from bioprocessml.ingest.accepted import accepted_ids, read_accepted, window_ids
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.rollout_store import active_rollouts
from bioprocessml.settings import Settings
from bioprocessml.spec import load_spec
from models.base import TASKS, Task
from models.features import FeatureSpec, make_samples
from models.naive import NaiveModel
from models.registry import CHAMPION, alias_version
from monitoring.champion import Champion, load_champion
from monitoring.concept import ConceptState, batch_error, update_cusum
from monitoring.data_drift import check_data_drift
from monitoring.history import DriftRecord, load_history, save_record
from monitoring.retrain_policy import decide_retrain

MIN_REFERENCE = 3


def champions_now() -> dict[Task, bool]:
    """Which tasks have a champion (the registry is configured by `load_champion`)."""
    return {task: alias_version(task, CHAMPION) is not None for task in TASKS}


def previous_cusum(history: list[DriftRecord], champion: Champion) -> ConceptState:
    """CUSUM state of this champion: it restarts when the champion changes."""
    mine = [
        r for r in history if r.champion_version == champion.version and r.error_ratio is not None
    ]
    if not mine:
        return ConceptState()
    return ConceptState(cusum=mine[-1].cusum, batches=len(mine), alarm=mine[-1].concept_alarm)


def naive_error(
    settings: Settings, champion: Champion, frame: pd.DataFrame, target: str
) -> float | None:
    """RMSE on the batch's assays of the naive forecast of the champion's training batches (their
    mean trajectory): the champion must stay below it to be worth serving."""
    batches = [
        read_accepted(settings, b) for b in champion.train_batches if b in accepted_ids(settings)
    ]
    fs = FeatureSpec.from_spec(load_spec(settings.spec_path))
    try:
        naive = NaiveModel("soft_sensor").fit(make_samples(batches, fs, "soft_sensor"))
    except ValueError:
        return None
    return batch_error(lambda histories: naive.predict(histories).mean, frame, target)


def check_concept(
    record: DriftRecord,
    champion: Champion,
    history: list[DriftRecord],
    settings: Settings,
    target: str,
) -> None:
    frame = read_accepted(settings, record.batch_id)
    error = batch_error(champion.predict, frame, target)
    if error is None:
        return
    record.batch_rmse = error
    record.naive_rmse = naive_error(settings, champion, frame, target)
    record.error_ratio = error / champion.validation_rmse
    t = settings.thresholds
    state = update_cusum(
        previous_cusum(history, champion), record.error_ratio, k=t.cusum_k, h=t.cusum_h
    )
    record.cusum, record.concept_alarm = state.cusum, state.alarm
    if state.alarm:
        record.reasons.append(
            f"champion v{champion.version} error {error:.3f} is {record.error_ratio:.1f}× its validation "
            f"RMSE {champion.validation_rmse:.3f}; CUSUM {state.cusum:.2f} > {t.cusum_h:g}"
        )


def check_data(
    record: DriftRecord, reference_ids: list[str], settings: Settings, fs: FeatureSpec
) -> None:
    t = settings.thresholds
    window = [
        read_accepted(settings, i) for i in window_ids(settings, record.batch_id, t.drift_window)
    ]
    report = settings.reports_dir / f"{record.batch_id}.html"
    result = check_data_drift(
        read_accepted(settings, record.batch_id), window, [read_accepted(settings, i) for i in reference_ids],
        fs, p_value=t.drift_p_value, drift_share=t.drift_share, report_html=report,
    )  # fmt: skip
    record.data_drift, record.drift_share = result.drifted, result.drift_share
    record.drifted_columns = [c.column for c in result.columns if c.drifted]
    record.report = str(report)
    record.details = {"window": result.window_batches, "feature_scores": result.feature_scores}
    if result.drifted:
        record.reasons.extend(result.reasons)


def monitor_batch(settings: Settings, batch_id: str, pending: bool = False) -> DriftRecord:
    """Check `batch_id`, decide, and save its record (the caller emits the event if asked)."""
    fs = FeatureSpec.from_spec(load_spec(settings.spec_path))
    champion = load_champion(settings)
    history = [r for r in load_history(settings.reports_dir) if r.batch_id != batch_id]
    ids = accepted_ids(settings)
    record = DriftRecord(batch_id=batch_id, champion_version=champion.version if champion else None)
    before = ids[: ids.index(batch_id)] if batch_id in ids else ids
    reference = champion.train_batches if champion else before
    if len(reference) >= MIN_REFERENCE:
        check_data(record, reference, settings, fs)
    if champion is not None:
        check_concept(record, champion, history, settings, fs.target)
    t = settings.thresholds
    decision = decide_retrain(
        champions=champions_now(), accepted=len(before) + 1, data_drift=record.data_drift,
        concept_alarm=record.concept_alarm, reasons=record.reasons, history=history, pending=pending,
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
    return record
