"""Concept-drift decision quality: the champion's error CUSUM on normal and changed batches,
with the old reference (mean RMSE of the held-out batches) and the new one (`assess_concept`:
held-out batches pooled with the first live batches, robust spread).

    .venv/bin/python benchmarks/concept_quality.py [--orders 6] [--dev DIR]

A PLS soft sensor (the project's PLS candidate) is the champion: trained on the train split of
the first `boot` batches (held-out share 1/3, spread, as the gate does), its per-batch RMSE on
the held-out batches is the validation error; then every later batch's RMSE on its assays is
a live error, in arrival order: the remaining normal batches, then the changed ones.

- dev: the IndPenSim dev set (16 normal, 6 temperature-shift), normal batches in random orders,
  champion after 8 batches (after 12 only 4 normal batches would be left to judge).
- simulator: 8 normal batches for the champion, 30 normal live batches, 6 raw-material or
  feed-change batches (96 h).

Writes benchmarks/results/concept_quality.json and .md.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from indpensim import DEV, dev_features, load_dev

from bioprocessml.settings import DEFAULT_SPEC, Thresholds
from bioprocessml.simulation.simulator import simulate
from bioprocessml.spec import load_spec
from models.evaluate import split_batches
from models.features import FeatureSpec, make_samples
from models.pls import PLSModel
from monitoring.concept import (
    ConceptState,
    LiveError,
    assess_concept,
    batch_error,
    update_cusum,
)

RESULTS = Path(__file__).parent / "results"


@dataclass
class Outcome:
    name: str
    validation: list[float]
    live: list[float]
    labels: list[str]
    old_alarms: list[int]  # 0-based live batches where the old CUSUM alarmed
    new_alarms: list[int]
    new_warming: int  # live batches spent in burn-in

    def score(self, alarms: list[int], skip: int = 0) -> dict[str, object]:
        normal = [i for i, lab in enumerate(self.labels) if lab == "normal" and i >= skip]
        changed = [i for i, lab in enumerate(self.labels) if lab != "normal"]
        first = next((k for k, i in enumerate(changed, 1) if i in alarms), None)
        return {"normal_judged": len(normal), "false_alarms": sum(i in alarms for i in normal),
                "delay": first}  # fmt: skip


def champion_errors(
    batches: list[pd.DataFrame], boot: int, fs: FeatureSpec
) -> tuple[list[float], list[float]]:
    """(validation per-batch RMSE on the held-out batches, live per-batch RMSE after `boot`)."""
    first = batches[:boot]
    ids = [str(f["batch_id"].iloc[0]) for f in first]
    train_ids, held_ids = split_batches(ids, 0.33, "spread")
    model = PLSModel("soft_sensor", fs).fit(
        make_samples(
            [f for f in first if str(f["batch_id"].iloc[0]) in train_ids], fs, "soft_sensor"
        )
    )

    def predict(histories: list[pd.DataFrame]) -> np.ndarray:
        return model.predict(histories).mean

    def errors(frames: list[pd.DataFrame]) -> list[float]:
        found = [batch_error(predict, f, fs.target) for f in frames]
        return [e for e in found if e is not None]

    held = [f for f in first if str(f["batch_id"].iloc[0]) in held_ids]
    return errors(held), errors(batches[boot:])


def new_alarms(validation: list[float], live: list[float], t: Thresholds) -> tuple[list[int], int]:
    """Live batches (0-based) where `assess_concept` alarms, and how many were burn-in. After
    an alarm the champion would be retrained: the CUSUM starts again, burn-in included."""
    alarms, warming, since = [], 0, 0
    for i in range(len(live)):
        items = [LiveError(batch_id=str(j), error=e) for j, e in enumerate(live[since : i + 1])]
        verdict = assess_concept(
            validation, items, burn_in=t.concept_burn_in, k=t.cusum_k, h=t.cusum_h,
            min_log_spread=t.concept_min_log_spread,
        )  # fmt: skip
        warming += verdict.warming_up and not alarms
        if verdict.alarm:
            alarms.append(i)
            since = i + 1
    return alarms, warming


def judge(name: str, validation: list[float], live: list[float], labels: list[str],
          t: Thresholds) -> Outcome:  # fmt: skip
    """Both CUSUMs over the live errors: alarms per batch."""
    typical_old = float(np.mean(validation))
    state, old = ConceptState(), []
    for i, error in enumerate(live):
        state = update_cusum(state, error / typical_old, k=0.5, h=3.0)  # the old defaults
        if state.alarm:
            old.append(i)
            state = ConceptState()
    new, warming = new_alarms(validation, live, t)
    return Outcome(name, validation, live, labels, old, new, warming)


def sensitivity(outcomes: list[Outcome], t: Thresholds) -> list[dict[str, object]]:
    """Totals over all runs for other alarm levels and burn-in lengths (same errors)."""
    rows = []
    for h in (3.0, 3.5, 4.0, 5.0):
        for burn_in in (3, 4, 6):
            variant = t.model_copy(update={"cusum_h": h, "concept_burn_in": burn_in})
            scores = [o.score(*new_alarms(o.validation, o.live, variant)) for o in outcomes]
            rows.append({"h": h, "burn_in": burn_in,
                         "false_alarms": sum(int(s["false_alarms"]) for s in scores),
                         "normal_judged": sum(int(s["normal_judged"]) for s in scores),
                         "delays": [s["delay"] for s in scores]})  # fmt: skip
    return rows


def dev_outcomes(t: Thresholds, orders: int, dev: Path) -> list[Outcome]:
    fs, normal, changed = (
        dev_features(dev),
        load_dev(dev, "normal"),
        load_dev(dev, "temperature-shift"),
    )
    rng, out = np.random.default_rng(0), []
    for k in range(orders):
        order = [normal[i] for i in rng.permutation(len(normal))] + changed
        validation, live = champion_errors(order, 8, fs)
        labels = ["normal"] * (len(normal) - 8) + ["temperature-shift"] * len(changed)
        out.append(judge(f"dev order {k}, champion after 8", validation, live, labels, t))
        print(
            json.dumps(
                {"name": out[-1].name, "old": out[-1].old_alarms, "new": out[-1].new_alarms}
            ),
            flush=True,
        )
    return out


def simulator_outcomes(t: Thresholds, seeds: int) -> list[Outcome]:
    fs, out = FeatureSpec.from_spec(load_spec(DEFAULT_SPEC)), []
    for seed in range(seeds):
        normal = simulate(38, "normal", seed=4000 + seed)
        for scenario in ("raw-material", "feed-change"):
            changed = simulate(6, scenario, seed=5000 + seed, start=101)
            validation, live = champion_errors(normal + changed, 8, fs)
            labels = ["normal"] * 30 + [scenario] * 6
            out.append(judge(f"sim seed {seed}: {scenario}", validation, live, labels, t))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--dev", type=Path, default=DEV)
    args = parser.parse_args()
    t = Thresholds()
    outcomes = dev_outcomes(t, args.orders, args.dev) + simulator_outcomes(t, args.seeds)
    rows = []
    for o in outcomes:
        rows.append({"name": o.name, "old": o.score(o.old_alarms), "new": o.score(o.new_alarms, o.new_warming),
                     "validation_mean": float(np.mean(o.validation)),
                     "live_normal_median": float(np.median([e for e, lab in zip(o.live, o.labels, strict=True) if lab == "normal"]))})  # fmt: skip
    grid = sensitivity(outcomes, t)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "concept_quality.json").write_text(json.dumps(
        {"thresholds": t.model_dump(), "runs": rows, "sensitivity": grid,
         "raw": [asdict(o) for o in outcomes]}, indent=2))  # fmt: skip
    lines = ["# Concept-drift decision quality (`benchmarks/concept_quality.py`)", "",
             f"New: burn-in {t.concept_burn_in}, k {t.cusum_k:g}, h {t.cusum_h:g}, min log-spread "
             f"{t.concept_min_log_spread:g}. Old: ratio to mean held-out RMSE, k 0.5, h 3.", "",
             "| run | validation mean | live normal median | normal judged old/new | false alarms old | false alarms new | delay old | delay new |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        old, new = r["old"], r["new"]
        lines.append(f"| {r['name']} | {r['validation_mean']:.2f} | {r['live_normal_median']:.2f} | "
                     f"{old['normal_judged']}/{new['normal_judged']} | {old['false_alarms']} | {new['false_alarms']} | "
                     f"{old['delay'] or '-'} | {new['delay'] or '-'} |")  # fmt: skip
    lines += ["", "Other levels, all runs (same errors): h, burn-in → false alarms / normal judged; delays",
              ""] + [f"- h {g['h']:g}, burn-in {g['burn_in']}: {g['false_alarms']}/{g['normal_judged']}; "
                     f"{g['delays']}" for g in grid]  # fmt: skip
    (RESULTS / "concept_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
