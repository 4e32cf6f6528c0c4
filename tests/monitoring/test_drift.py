"""Drift detection on simulated batches: false alarms on normal batches, delays on faults,
warm-up, recipe set-points and one-batch excursions.

One reference (20 normal batches), one normal stream (24 batches) and one set of fault batches,
shared by all tests of the module. Full-length batches (96 h): the harvest assays and the
whole-batch balances separate a raw-material lot better than 48-h batches do.

The concept-drift criteria depend on the champion as well as on the monitor: after the recipe
change some PLS fits extrapolate well (errors inside the normal range) and then, rightly, no
concept alarm fires; after the raw-material change the champion's error rises 3-5× its typical
live error and the CUSUM must catch it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bioprocessml.settings import DEFAULT_SPEC, Thresholds
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import load_spec
from models.features import FeatureSpec, feature_matrix, make_samples
from models.pls import PLSModel, out_of_fold
from monitoring.concept import LiveError, assess_concept, batch_error
from monitoring.data_drift import DataDriftResult, check_data_drift
from monitoring.summary import feature_column, summary_names

pytestmark = pytest.mark.data

WINDOW = 5
MAX_DELAY = 2  # a change is flagged in its first or second batch
# The champion's error on a raw-material batch is 3-5× its typical live error, but its per-batch
# errors on normal batches vary by a factor of ~7 here (log-spread ~0.6): the CUSUM needs ≤ 4
# batches. After this feed change the PLS fit extrapolates well on half the batches (errors back
# at 0.3, inside the normal range), so no test asks for a concept alarm there; over other seeds
# both changes alarm in 2 batches (benchmarks/results/concept_quality.md).
CONCEPT_DELAY = 4
FAULTS = ("feed-change", "raw-material", "sensor-drift")


@pytest.fixture(scope="module")
def fs() -> FeatureSpec:
    return FeatureSpec.from_spec(load_spec(DEFAULT_SPEC))


@pytest.fixture(scope="module")
def reference() -> list[pd.DataFrame]:
    return simulate(20, "normal", seed=31)


@pytest.fixture(scope="module")
def stream() -> list[pd.DataFrame]:
    return simulate(24, "normal", seed=32, start=101)


@pytest.fixture(scope="module")
def faults() -> dict[str, list[pd.DataFrame]]:
    return {name: simulate(CONCEPT_DELAY, name, seed=33) for name in FAULTS}


@pytest.fixture(scope="module")
def primed() -> list[pd.DataFrame]:
    """Normal batches already in the window when a fault starts."""
    return simulate(3, "normal", seed=34, start=201)


@pytest.fixture(scope="module")
def normal_results(
    stream: list[pd.DataFrame], reference: list[pd.DataFrame], fs: FeatureSpec
) -> list[DataDriftResult]:
    return [
        check_data_drift(new, stream[max(0, i - WINDOW) : i], reference, fs)
        for i, new in enumerate(stream)
    ]


def first_drift(
    batches: list[pd.DataFrame],
    primed: list[pd.DataFrame],
    reference: list[pd.DataFrame],
    fs: FeatureSpec,
) -> tuple[int, DataDriftResult] | None:
    """Stream `batches` after `primed`; (1-based delay, result) of the first drifted one."""
    window = list(primed)
    for k, new in enumerate(batches, start=1):
        result = check_data_drift(new, window[-WINDOW:], reference, fs)
        if result.drifted:
            return k, result
        window.append(new)
    return None


def test_normal_stream_has_at_most_one_false_alarm(normal_results: list[DataDriftResult]) -> None:
    flagged = [(r.batch_id, r.reasons) for r in normal_results if r.drifted]
    assert len(flagged) <= 1, flagged
    assert all(len(r.window_batches) == min(i, WINDOW) + 1 for i, r in enumerate(normal_results))


@pytest.mark.parametrize("scenario", FAULTS)
def test_fault_is_flagged_within_two_batches(
    scenario: str,
    faults: dict[str, list[pd.DataFrame]],
    primed: list[pd.DataFrame],
    reference: list[pd.DataFrame],
    fs: FeatureSpec,
) -> None:
    found = first_drift(faults[scenario], primed, reference, fs)
    assert found is not None and found[0] <= MAX_DELAY, (
        f"{scenario} not flagged in {MAX_DELAY} batches"
    )
    _, result = found
    assert result.reasons and all(isinstance(r, str) for r in result.reasons)
    if scenario == "sensor-drift":
        drifted = {c.column for c in result.columns if c.drifted}
        assert "ph" in drifted
        assert any(r.startswith("ph: ") and "on the same side" in r for r in result.reasons)


def test_window_of_changed_batches_drifts_as_a_whole(
    faults: dict[str, list[pd.DataFrame]], reference: list[pd.DataFrame], fs: FeatureSpec
) -> None:
    changed = faults["feed-change"]
    result = check_data_drift(changed[-1], changed[:-1], reference, fs)
    assert result.window_batches == [f"FC{i:03d}" for i in range(1, len(changed) + 1)]
    assert result.drift_share >= 0.3
    assert any(r.startswith(f"window of {len(changed)} batches") for r in result.reasons)


def test_row_level_scores_are_reported_not_judged(
    normal_results: list[DataDriftResult], fs: FeatureSpec
) -> None:
    for result in normal_results:
        assert set(result.row_level) == set(fs.online)
        assert all(0.0 <= p <= 1.0 for p in result.row_level.values())
    row_drift_only = [
        r for r in normal_results if not r.drifted and min(r.row_level.values()) < 0.01
    ]
    assert row_drift_only, "autocorrelated rows should look drifted on some normal batch"


def test_window_scores_cover_summary_features(
    normal_results: list[DataDriftResult], fs: FeatureSpec
) -> None:
    last = normal_results[-1]
    assert set(last.feature_scores) <= set(summary_names(fs))
    assert len(last.feature_scores) > 0.9 * len(summary_names(fs))
    drifted = np.mean([p <= 0.01 for p in last.feature_scores.values()])
    assert last.drift_share == pytest.approx(drifted)
    assert {feature_column(k) for k in last.feature_scores} <= {
        *fs.online, *fs.cumulative, *fs.integrated, *fs.offline,
    }  # fmt: skip


def test_html_report_names_the_drifting_column(
    tmp_path: Path,
    faults: dict[str, list[pd.DataFrame]],
    primed: list[pd.DataFrame],
    reference: list[pd.DataFrame],
    fs: FeatureSpec,
) -> None:
    html = tmp_path / "reports" / "drift.html"
    *before, new = faults["sensor-drift"]
    result = check_data_drift(new, before, reference, fs, report_html=html)
    assert result.drifted and html.is_file()
    text = html.read_text(encoding="utf-8")
    assert "Drift in column 'ph__late_mean'" in text and "Drift in column 'ph'" in text
    assert result == check_data_drift(new, before, reference, fs), "HTML must not change results"


def test_batch_with_missing_sensor_does_not_crash(
    stream: list[pd.DataFrame], reference: list[pd.DataFrame], fs: FeatureSpec
) -> None:
    broken = stream[0].copy()
    broken["dissolved_oxygen"] = np.nan
    broken.loc[broken.index[::3], "ph"] = np.nan
    broken = broken.drop(columns=["aeration"])
    result = check_data_drift(broken, stream[1:3], reference, fs)
    assert "dissolved_oxygen" not in result.row_level and "aeration" not in result.row_level
    assert any(r.startswith("dissolved_oxygen: no usable readings") for r in result.reasons)
    assert not any(c.drifted for c in result.columns if c.column in {"dissolved_oxygen", "ph"})


def test_too_small_a_reference_is_warming_up_not_drift(
    faults: dict[str, list[pd.DataFrame]], reference: list[pd.DataFrame], fs: FeatureSpec
) -> None:
    *before, new = faults["feed-change"]
    early = check_data_drift(new, before, reference[:5], fs, min_reference=8)
    assert early.warming_up and not early.drifted and early.reference_batches == 5
    assert early.reasons[0].startswith("warming up: 5 reference batches")
    assert any(c.kind == "confirmed" for c in early.columns), "what it would flag is shown"
    ready = check_data_drift(new, before, reference[:8], fs, min_reference=8)
    assert ready.drifted and not ready.warming_up
    tiny = check_data_drift(new, before, reference[:1], fs)
    assert tiny.warming_up and not tiny.drifted and not tiny.columns


def with_aeration(frames: list[pd.DataFrame], value: float) -> list[pd.DataFrame]:
    return [f.assign(aeration=value) for f in frames]


def test_set_point_constant_in_the_reference_has_a_tolerance(
    stream: list[pd.DataFrame], reference: list[pd.DataFrame], fs: FeatureSpec
) -> None:
    """Aeration at a fixed 5 L/min in every reference batch (a recipe set-point): 1e-9 more
    is no change; 10 % more is a recipe change, flagged in its first batch."""
    fixed = with_aeration(reference, 5.0)
    (same,) = with_aeration(stream[:1], 5.0 + 1e-9)
    result = check_data_drift(same, [], fixed, fs)
    assert not result.drifted and not any(
        c.features for c in result.columns if c.column == "aeration"
    )
    (more,) = with_aeration(stream[:1], 5.5)
    result = check_data_drift(more, [], fixed, fs)
    (aeration,) = [c for c in result.columns if c.drifted]
    assert result.drifted and aeration.column == "aeration" and aeration.kind == "recipe"
    assert any(r.startswith("aeration: ") and "recipe change" in r for r in result.reasons)


def test_one_batch_excursion_is_reported_not_drift(
    stream: list[pd.DataFrame], faults: dict[str, list[pd.DataFrame]],
    reference: list[pd.DataFrame], fs: FeatureSpec,
) -> None:  # fmt: skip
    """A probe off in one batch only (then back to normal) is an excursion: shown, no alarm."""
    odd = faults["sensor-drift"][0]
    alone = check_data_drift(odd, stream[:3], reference, fs)
    ph = next(c for c in alone.columns if c.column == "ph")
    assert not alone.drifted and ph.kind == "excursion" and ph.features
    assert any(r.startswith("ph: ") and "excursion" in r for r in alone.reasons)
    after = check_data_drift(stream[3], [*stream[:3], odd], reference, fs)
    assert not after.drifted


# --- concept drift ---------------------------------------------------------------------


Champion = tuple[Callable[[list[pd.DataFrame]], np.ndarray], list[float]]
RULE = Thresholds()


@pytest.fixture(scope="module")
def champion(reference: list[pd.DataFrame], fs: FeatureSpec) -> Champion:
    """A PLS soft sensor on the reference batches, and its per-batch validation RMSE from the
    same grouped cross-validation that chose its components."""
    samples = make_samples(reference, fs, "soft_sensor")
    model = PLSModel("soft_sensor", fs).fit(samples)
    x = feature_matrix(samples.histories, fs, "soft_sensor")
    oof = out_of_fold(x, samples.targets, samples.groups, model.components_, 5)
    validation = [
        float(np.sqrt(np.mean((oof - samples.targets)[samples.groups == g] ** 2)))
        for g in dict.fromkeys(samples.groups)
    ]

    def predict(histories: list[pd.DataFrame]) -> np.ndarray:
        return model.predict(histories).mean

    return predict, validation


def concept_alarms(champion: Champion, frames: list[pd.DataFrame], target: str) -> list[int]:
    """1-based batches at which the champion's CUSUM alarms; after an alarm the champion is
    retrained (here: the same one starts again, burn-in included)."""
    predict, validation = champion
    alarms, since = [], 0
    errors = [batch_error(predict, f, target) for f in frames]
    for k, error in enumerate(errors, start=1):
        assert error is not None
        live = [LiveError(batch_id=str(i), error=e) for i, e in enumerate(errors[since:k]) if e]
        verdict = assess_concept(
            validation, live, burn_in=RULE.concept_burn_in, k=RULE.cusum_k, h=RULE.cusum_h,
            min_log_spread=RULE.concept_min_log_spread,
        )  # fmt: skip
        if verdict.alarm:
            alarms.append(k)
            since = k
    return alarms


def test_concept_normal_stream_has_at_most_one_alarm(
    stream: list[pd.DataFrame], champion: Champion, fs: FeatureSpec
) -> None:
    assert len(concept_alarms(champion, stream, fs.target)) <= 1


@pytest.mark.parametrize("scenario", ["raw-material"])
def test_concept_alarm_within_four_batches_after_burn_in(
    scenario: str,
    stream: list[pd.DataFrame],
    faults: dict[str, list[pd.DataFrame]],
    champion: Champion,
    fs: FeatureSpec,
) -> None:
    burn_in = stream[: RULE.concept_burn_in]
    alarms = concept_alarms(champion, [*burn_in, *faults[scenario]], fs.target)
    assert alarms and alarms[0] - len(burn_in) <= CONCEPT_DELAY, alarms
