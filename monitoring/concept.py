"""Concept drift: the champion's error on newly labelled batches, accumulated by a CUSUM.

Each batch gives one number, the champion's RMSE on that batch's assays. Its reference
(`error_reference`) is robust and live: the median of the champion's per-batch errors on the
batches since it went live that looked normal (not data drift, not far above the reference
then), pooled with its validation batches during the first `burn_in` of them; the spread is
1.4826·MAD of log errors, never below `min_log_spread` (per-batch errors of a soft sensor
vary by a factor 1.3-2 between normal batches). A few held-out batches are a poor reference:
three lucky ones made normal batches look 2× worse and the CUSUM fired on them; four live
batches alone are noisy too (one unlucky set made every later batch look 2× worse), so the
reference keeps growing with the normal-looking live batches.

`assess_concept` replays the champion's live errors: during burn-in it only collects them (the
result says it is warming up); afterwards each batch adds z = ln(error / typical) / spread to a
one-sided CUSUM, S = max(0, S + z - k), which alarms while S > h. With k = 0.5 and h = 4 a
single noisy batch passes, a sustained 3× error (z≈2.4 at spread 0.45) alarms on the third
batch, and a normal stream alarms about once in 170 batches (Gaussian z).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel

from bioprocessml.dataset import TIME
from models.evaluate import mean_batch_rmse
from models.features import without_own_assay

Predict = Callable[[list[pd.DataFrame]], np.ndarray]


def labelled_points(frame: pd.DataFrame, target: str) -> list[tuple[pd.DataFrame, float]]:
    """(history up to each assay of `target` without its result, assay value), without the assay
    at batch start (nothing to predict from yet): the soft sensor's samples (`make_samples`)."""
    if target not in frame or frame.empty:
        return []
    frame = frame.sort_values(TIME)
    time = frame[TIME].to_numpy(dtype=float)
    assays = frame[[TIME, target]].dropna()
    return [
        (without_own_assay(frame[time <= t + 1e-9], target), float(y))
        for t, y in assays.itertuples(index=False)
        if t > time[0]
    ]


def batch_error(predict: Predict, frame: pd.DataFrame, target: str) -> float | None:
    """RMSE of `predict` on the batch's assays of `target`; None if the batch has none."""
    points = labelled_points(frame, target)
    if not points:
        return None
    predicted = np.asarray(predict([h for h, _ in points]), dtype=float).ravel()
    actual = np.array([y for _, y in points])
    return float(np.sqrt(np.mean((predicted - actual) ** 2)))


def validation_error(predicted: np.ndarray, actual: np.ndarray, groups: np.ndarray) -> float:
    """The champion's typical batch RMSE on validation batches (mean over batches of each
    batch's RMSE, e.g. from grouped cross-validation): the like-for-like scale for
    `batch_error`, so that the ratio is ≈ 1 for a normal batch. The pooled RMSE over all
    samples is dominated by the worst batches; normal ratios against it sit near 0.7-0.9,
    which makes the CUSUM slower (not wrong)."""
    return mean_batch_rmse(np.ravel(predicted) - np.ravel(actual), np.ravel(groups))


class ConceptState(BaseModel):
    cusum: float = 0.0
    batches: int = 0
    alarm: bool = False


def update_cusum(state: ConceptState, ratio: float, k: float = 0.5, h: float = 3.0) -> ConceptState:
    """One batch more: S = max(0, S + ratio - 1 - k); alarm while S > h. A NaN or infinite
    ratio carries no information and leaves the state as it was. The ratio to a fixed
    validation error is what `assess_concept` replaces (kept until the monitor calls it)."""
    if not np.isfinite(ratio):
        return state
    cusum = max(0.0, state.cusum + ratio - 1.0 - k)
    return ConceptState(cusum=cusum, batches=state.batches + 1, alarm=cusum > h)


class ErrorReference(BaseModel):
    """The champion's typical per-batch error and the spread of its logarithm."""

    typical: float
    log_spread: float
    validation_batches: int
    live_batches: int


def error_reference(
    validation: Sequence[float], live: Sequence[float], min_log_spread: float, live_only: bool
) -> ErrorReference:
    """Typical per-batch error: the median of the live errors if `live_only` (burn-in done),
    else of validation and live errors pooled. Spread: 1.4826·MAD of the log errors around
    their own group's median (a shift between validation and live is no spread), floored.
    Non-finite or non-positive errors are left out."""
    groups = [
        np.log([e for e in errors if np.isfinite(e) and e > 0]) for errors in (validation, live)
    ]
    val, ok = groups
    pooled = np.concatenate(groups)
    if not len(pooled):
        raise ValueError("no usable per-batch error to build the champion's reference")
    center = float(np.median(ok if live_only and len(ok) else pooled))
    deviations = np.concatenate([g - np.median(g) for g in groups if len(g)])
    mad = 1.4826 * float(np.median(np.abs(deviations)))
    return ErrorReference(
        typical=float(np.exp(center)), log_spread=max(mad, min_log_spread),
        validation_batches=len(val), live_batches=len(ok),
    )  # fmt: skip


ABSORB_Z = 2.0  # a live batch this far above the typical error does not join the reference


class LiveError(BaseModel):
    """The champion's error on one batch after it went live, in arrival order."""

    batch_id: str
    error: float
    data_drift: bool = False  # flagged as data drift: never part of the reference


class ConceptVerdict(BaseModel):
    cusum: float = 0.0
    alarm: bool = False
    warming_up: bool = True
    ratio: float | None = None  # the last batch's error / the typical error
    z: float | None = None
    reference: ErrorReference | None = None
    live_reference: list[str] = []  # live batches the last batch was judged against


def assess_concept(
    validation: Sequence[float],
    live: Sequence[LiveError],
    *,
    burn_in: int,
    k: float,
    h: float,
    min_log_spread: float,
) -> ConceptVerdict:
    """Concept drift of the champion after the last of its `live` batches (see the module
    docstring). `validation`: its per-batch errors on held-out batches (one mean value is
    enough); `live`: its errors on every labelled batch since it went live, oldest first.
    Each batch is judged against the reference before it; then it joins the reference if it
    is not data drift, the CUSUM is not in alarm and (after burn-in) z ≤ `ABSORB_Z`."""
    baseline: list[LiveError] = []
    verdict = ConceptVerdict()
    for item in live:
        if not np.isfinite(item.error) or item.error <= 0:
            continue
        warming = len(baseline) < burn_in
        known = [b.error for b in baseline]
        if not any(np.isfinite(e) and e > 0 for e in [*validation, *known]):
            baseline.append(item)  # no validation error: the first live batch starts the reference
            continue
        ref = error_reference(validation, known, min_log_spread, not warming)
        ratio = item.error / ref.typical
        z = float(np.log(max(ratio, 1e-12)) / ref.log_spread)
        cusum = 0.0 if warming else max(0.0, verdict.cusum + z - k)
        verdict = ConceptVerdict(
            cusum=cusum, alarm=cusum > h, warming_up=warming, ratio=ratio, z=z, reference=ref,
            live_reference=[b.batch_id for b in baseline],
        )  # fmt: skip
        if not item.data_drift and not verdict.alarm and (warming or z <= ABSORB_Z):
            baseline.append(item)
    return verdict


def concept_reason(verdict: ConceptVerdict, h: float) -> str:
    """Plain words for an alarm (or the state of the CUSUM)."""
    ref = verdict.reference
    if ref is None or verdict.ratio is None:
        return "no labelled batch since the champion went live"
    pooled = (
        f"median of {ref.live_batches} live batches"
        if not verdict.warming_up
        else f"median of {ref.validation_batches} validation + {ref.live_batches} live batches"
    )
    state = f"CUSUM {verdict.cusum:.2f} {'>' if verdict.alarm else '≤'} {h:g}"
    if verdict.warming_up:
        state = f"warming up: {ref.live_batches} live batches in the reference so far"
    return (
        f"champion error {verdict.ratio:.2f}× its typical per-batch error {ref.typical:.3g} "
        f"({pooled}, log-spread {ref.log_spread:.2f}); {state}"
    )
