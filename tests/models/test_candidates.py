"""Issue-15 properties on small simulated data, over several seeds fixed before any result was
seen: the GP soft sensor is not worse than PLS, intervals cover the median held-out batch at
about their nominal 95 %, the hybrid and the assay-corrected mode behave as documented.

Each seed: 12 batches of 72 h; the first 8 train, the last 4 are held out whole and scored every
hour against the simulator's true titer (never a model input)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest

from benchmarks.simtruth import simulate_with_truth
from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.simulation.simulator import SimConfig
from bioprocessml.spec import DatasetSpec
from models.anchored import ASSAYS, ONLINE, AssayAnchoredModel
from models.base import Prediction, Samples
from models.calibration import elapsed_hours
from models.features import FeatureSpec, make_samples
from models.gp import GPModel
from models.hybrid import HybridModel, whole_batches
from models.massbalance import to_series
from models.pls import PLSModel

SEEDS = (101, 102, 103, 104, 105)  # fixed before running: not picked by outcome
SMALL = SimConfig(duration_h=72.0, online_interval_min=10.0)
# Measured at these seeds (2026-12, first run): GP RMSE ≤ 1.05 × PLS at 3 of 5 seeds (far
# better at the other three: mean 0.11 vs 0.26 g/L); median held-out batch coverage in
# [0.80, 1.00] at 3 of 5 seeds (GP) and 4 of 5 (PLS) — four held-out batches a seed make that
# median noisy, so it is also asserted over all 20 held-out batches together.
# Hybrid and the `+assays` modes (added 2026-12 with the variogram age model; criterion set
# before their first run): median held-out batch coverage in [0.80, 1.00] at ≥ 3 of 5 seeds.
# Measured at that first run: 4 of 5 for each of them; PLS 4/5, GP 4/5, GP ≤ 1.05 × PLS 4/5;
# over all 20 held-out batches: PLS 0.93, GP 0.97, hybrid 1.00, PLS/GP/hybrid+assays
# 0.89/0.93/0.90 (the hybrid over-covers on these small batches). Re-measured with the median
# batch aimed at 93.5 % (thresholds unchanged): PLS 4/5, GP 4/5, hybrid 5/5, PLS/GP/hybrid
# +assays 4/4/5 of 5; over all 20 held-out batches PLS 0.93, GP 0.97, hybrid 1.00, +assays
# 0.89/0.93/0.95.
MIN_PASSING = {
    "gp_vs_pls": 3, "pls": 4, "gp": 3,
    "hybrid": 3, "pls+assays": 3, "gp+assays": 3, "hybrid+assays": 3,
}  # fmt: skip
GP_TOLERANCE = 1.05  # "not worse": they tie at the simulator's floor (unseen product yields)


@dataclass
class Split:
    train: Samples
    test: Samples  # hourly cuts of the held-out batches, target = true titer


def hourly(batch: pd.DataFrame, truth: pd.DataFrame) -> Samples:
    time_h = batch[TIME].to_numpy(dtype=float)
    cuts = np.arange(1.0, time_h[-1] + 1e-9, 1.0)
    mine = truth[truth[BATCH_ID] == batch[BATCH_ID].iloc[0]]
    y = np.interp(cuts, mine[TIME].to_numpy(float), mine["titer"].to_numpy(float))
    return Samples(
        [batch[time_h <= c + 1e-9] for c in cuts], y, np.full(len(cuts), batch[BATCH_ID].iloc[0]),
        cuts, cuts / time_h[-1],
    )  # fmt: skip


def make_split(seed: int, fs: FeatureSpec) -> Split:
    batches, truth = simulate_with_truth(12, seed, cfg=SMALL)
    parts = [hourly(b, truth) for b in batches[8:]]
    test = Samples(
        [h for p in parts for h in p.histories], np.concatenate([p.targets for p in parts]),
        np.concatenate([p.groups for p in parts]), np.concatenate([p.times for p in parts]),
        np.concatenate([p.fractions for p in parts]),
    )  # fmt: skip
    return Split(make_samples(batches[:8], fs, "soft_sensor"), test)


def rmse(prediction: Prediction, samples: Samples) -> float:
    return float(np.sqrt(np.mean((prediction.mean - samples.targets) ** 2)))


def batch_median_coverage(prediction: Prediction, samples: Samples) -> float:
    y = samples.targets
    inside = (y >= prediction.lower) & (y <= prediction.upper)
    return float(np.median([inside[samples.groups == g].mean() for g in np.unique(samples.groups)]))


@pytest.fixture(scope="module")
def fs(spec: DatasetSpec) -> FeatureSpec:
    return FeatureSpec.from_spec(spec)


def record(row: dict[str, float], name: str, prediction: Prediction, test: Samples) -> None:
    row[f"{name}_rmse"] = rmse(prediction, test)
    row[f"{name}_coverage"] = batch_median_coverage(prediction, test)
    inside = (test.targets >= prediction.lower) & (test.targets <= prediction.upper)
    for g in np.unique(test.groups):
        row[f"{name}_batch_{g}"] = float(inside[test.groups == g].mean())


@pytest.fixture(scope="module")
def outcomes(fs: FeatureSpec) -> list[dict[str, float]]:
    rows = []
    for seed in SEEDS:
        split = make_split(seed, fs)
        row: dict[str, float] = {"seed": seed}
        for name, model in (
            ("pls", PLSModel("soft_sensor", fs)),
            ("gp", GPModel("soft_sensor", fs)),
            ("hybrid", HybridModel("soft_sensor", fs)),
        ):
            model.fit(split.train)
            record(row, name, model.predict(split.test.histories), split.test)
            anchored = AssayAnchoredModel(model).calibrate(split.train)
            record(row, f"{name}+assays", anchored.predict(split.test.histories), split.test)
        rows.append(row)
        print({k: round(v, 3) for k, v in row.items() if "_batch_" not in k})
    return rows


def test_gp_is_not_worse_than_pls_at_most_seeds(outcomes: list[dict[str, float]]) -> None:
    passing = [r["gp_rmse"] <= GP_TOLERANCE * r["pls_rmse"] for r in outcomes]
    assert sum(passing) >= MIN_PASSING["gp_vs_pls"], outcomes
    assert np.mean([r["gp_rmse"] for r in outcomes]) <= np.mean([r["pls_rmse"] for r in outcomes])


@pytest.mark.parametrize("name", list(MIN_PASSING)[1:])
def test_median_batch_coverage_is_near_nominal_at_most_seeds(
    outcomes: list[dict[str, float]], name: str
) -> None:
    passing = [0.80 <= r[f"{name}_coverage"] <= 1.0 for r in outcomes]
    assert sum(passing) >= MIN_PASSING[name], outcomes
    batches = [v for r in outcomes for k, v in r.items() if k.startswith(f"{name}_batch_")]
    assert len(batches) == 4 * len(SEEDS)
    print(name, "median held-out batch coverage, all seeds:", np.median(batches))
    assert 0.80 <= np.median(batches) <= 1.0, sorted(batches)


@pytest.fixture(scope="module")
def hybrid_split(fs: FeatureSpec) -> tuple[HybridModel, Split]:
    split = make_split(SEEDS[0], fs)
    return HybridModel("soft_sensor", fs, steps=100).fit(split.train), split


def test_hybrid_titer_is_physical_and_survives_pickling(
    hybrid_split: tuple[HybridModel, Split],
) -> None:
    model, split = hybrid_split
    prediction = model.predict(split.test.histories)
    assert (prediction.lower >= 0).all() and (prediction.mean >= prediction.lower).all()
    assert rmse(prediction, split.test) < 0.5 * float(np.std(split.test.targets))
    first = split.test.histories[0].head(3)  # nothing produced yet at the start
    assert model.predict([first]).mean[0] < 0.05 * split.test.targets.max()
    restored = pickle.loads(pickle.dumps(model)).predict(split.test.histories[:20])
    np.testing.assert_array_equal(restored.upper, model.predict(split.test.histories[:20]).upper)


def test_assay_mode_uses_the_lab_titer_and_says_so(
    hybrid_split: tuple[HybridModel, Split], fs: FeatureSpec
) -> None:
    model, split = hybrid_split
    anchored = AssayAnchoredModel(model).calibrate(split.train)
    prediction = anchored.predict(split.test.histories)
    assert prediction.mode is not None and set(prediction.mode) == {ASSAYS}
    assert rmse(prediction, split.test) < rmse(model.predict(split.test.histories), split.test)
    history = split.test.histories[40]
    no_lab = history.assign(**{fs.target: np.nan})
    before_lab = anchored.predict([no_lab])
    assert before_lab.mode == (ONLINE,)
    assert anchored.predict([history.drop(columns=[fs.target])]).mode == (ONLINE,)
    assert before_lab.mean[0] == pytest.approx(model.predict([no_lab]).mean[0])
    lab_row = np.flatnonzero(history[fs.target].notna().to_numpy())[-1]
    at_lab = anchored.predict([history.iloc[: lab_row + 1]])
    assert at_lab.mean[0] == pytest.approx(history[fs.target].iloc[lab_row], abs=1e-9)
    assert "mode" in at_lab.frame().columns
    with pytest.raises(ValueError, match="soft sensor"):
        AssayAnchoredModel(HybridModel("harvest", fs))


def test_hybrid_harvest_out_of_fold_forecast_ignores_its_own_batch(fs: FeatureSpec) -> None:
    """The calibration residuals of a batch must come from a forecast that never saw it: its
    final titer must not enter the mean trajectory, mean final titer or gain used for it."""
    batches, _ = simulate_with_truth(6, SEEDS[0], cfg=SMALL)
    samples = make_samples(batches, fs, "harvest")
    series = [to_series(h, fs) for h in whole_batches(samples)]
    now = np.random.default_rng(0).uniform(0.0, 5.0, len(samples))
    elapsed = elapsed_hours(samples.histories)
    ids = np.array([s.batch_id for s in series])
    folds = [ids[k::3] for k in range(3)]  # as the rate's cross-fit holds batches out
    model = HybridModel("harvest", fs)
    model._fit_persistence(series, samples, now, elapsed, folds)
    before = model.oof_.copy()
    mine = samples.groups == series[0].batch_id
    series[0] = replace(series[0], assays=series[0].assays + 10.0)
    changed = replace(samples, targets=samples.targets + 10.0 * mine)
    model._fit_persistence(series, changed, now, elapsed, folds)
    np.testing.assert_allclose(model.oof_[mine], before[mine])
    assert not np.allclose(model.oof_[~mine], before[~mine])  # other folds do see it
