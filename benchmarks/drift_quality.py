"""Drift decision quality: false alarms on normal batches, detection delay of process changes.

    .venv/bin/python benchmarks/drift_quality.py [--orders 10] [--seeds 3] [--quick] [--dev DIR]

Every batch goes through `check_data_drift` as the pipeline does it: in arrival order, the
window = the accepted batches just before it, the reference = the accepted batches before any
champion, then the champion's batches (train + held-out; `--train-only`: its train split, as the
monitor read it before) — a first champion after `boot` batches, a new one (all accepted
batches) after each data-drift alarm, at most one per `retrain_cooldown_batches`.

1. dev: the IndPenSim dev set, 16 normal then 6 temperature-shift batches, as given, and in
   random orders (normal batches shuffled, then the changed ones) with a champion after 8 or 12.
2. injected: the dev set's last 4 normal batches with a fault injected into their files (no
   process response: a probe drifting, a probe stuck, a 10 % higher sugar-feed profile).
3. simulator: `bioprocessml simulate` scenarios (16 normal, then 4 changed; 96 h and the demo's
   72 h), and a long normal stream.
4. concept (`benchmarks/concept_quality.py`): the champion's error CUSUM, old vs new reference.

Writes benchmarks/results/drift_quality.json and .md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from indpensim import DEV, dev_features, load_dev

from bioprocessml.settings import DEFAULT_SPEC, Thresholds
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import load_spec
from models.evaluate import split_batches
from models.features import FeatureSpec
from monitoring.data_drift import check_data_drift
from monitoring.drift_limits import spec_ranges

RESULTS = Path(__file__).parent / "results"
FAULTS = ("feed-change", "raw-material", "sensor-drift", "stuck-sensor")


@dataclass
class Step:
    batch_id: str
    label: str
    drifted: bool
    warming_up: bool
    reference: int
    columns: list[str]
    excursions: list[str]
    seconds: float


@dataclass
class Score:
    name: str
    normal_checked: int  # normal batches checked after warm-up
    false_alarms: int
    false_alarm_batches: list[str]
    changed: int  # changed batches in the run
    delay: int | None  # 1-based: the first changed batch flagged
    named: list[str]  # columns of that alarm, worst first


@dataclass
class Replay:
    name: str
    steps: list[Step] = field(default_factory=list)

    def score(self) -> Score:
        checked = [s for s in self.steps if s.label == "normal" and not s.warming_up]
        changed = [s for s in self.steps if s.label != "normal"]
        first = next((k for k, s in enumerate(changed, 1) if s.drifted), None)
        return Score(
            self.name, len(checked), sum(s.drifted for s in checked),
            [s.batch_id for s in checked if s.drifted], len(changed), first,
            changed[first - 1].columns if first else [],
        )  # fmt: skip


def replay(
    name: str, batches: list[pd.DataFrame], labels: list[str], fs: FeatureSpec, t: Thresholds,
    boot: int, train_only: bool = False, ranges: dict[str, tuple[float, float]] | None = None,
) -> Replay:  # fmt: skip
    """The drift check of every batch as the pipeline runs it (see the module docstring)."""
    out, accepted, last_retrain = Replay(name), [], -(10**6)
    reference: list[pd.DataFrame] | None = None
    for i, (new, label) in enumerate(zip(batches, labels, strict=True)):
        start = time.perf_counter()
        result = check_data_drift(
            new, accepted[-t.drift_window :], reference if reference is not None else accepted,
            fs, t.drift_p_value, t.drift_share, limit_level=t.drift_limit_level,
            min_reference=t.drift_min_reference,
            tolerance=t.drift_tolerance, confirm=t.drift_confirm_batches, ranges=ranges,
        )  # fmt: skip
        out.steps.append(Step(
            result.batch_id, label, result.drifted, result.warming_up, result.reference_batches,
            [c.column for c in sorted(result.columns, key=lambda c: -c.score) if c.drifted],
            [c.column for c in result.columns if c.kind == "excursion"],
            time.perf_counter() - start,
        ))  # fmt: skip
        accepted.append(new)
        retrain = result.drifted and i - last_retrain > t.retrain_cooldown_batches
        if (reference is None and len(accepted) >= boot) or (reference is not None and retrain):
            reference, last_retrain = champion_batches(accepted, train_only), i
    return out


def champion_batches(accepted: list[pd.DataFrame], train_only: bool) -> list[pd.DataFrame]:
    if not train_only:
        return list(accepted)
    ids = [str(f["batch_id"].iloc[0]) for f in accepted]
    train, _ = split_batches(ids, 0.33, "spread")
    return [f for f in accepted if str(f["batch_id"].iloc[0]) in train]


def dev_replays(t: Thresholds, orders: int, train_only: bool, dev: Path) -> list[Replay]:
    fs, normal, changed = (
        dev_features(dev),
        load_dev(dev, "normal"),
        load_dev(dev, "temperature-shift"),
    )
    labels = ["normal"] * len(normal) + ["temperature-shift"] * len(changed)
    runs = [replay(f"dev as given, champion after {b}", normal + changed, labels, fs, t, b,
                   train_only) for b in (8, 12)]  # fmt: skip
    rng = np.random.default_rng(0)
    for k in range(orders):
        order = [normal[i] for i in rng.permutation(len(normal))]
        order += [changed[i] for i in rng.permutation(len(changed))]
        boot = (8, 12)[k % 2]
        runs.append(replay(f"dev order {k}, champion after {boot}", order, labels, fs, t, boot,
                           train_only))  # fmt: skip
    return runs


def inject(frame: pd.DataFrame, fault: str) -> pd.DataFrame:
    """A fault in the file only (the process itself is unchanged), from 40 % of the batch on."""
    out = frame.copy()
    time_h = out["time"].to_numpy()
    after = np.maximum(time_h - 0.4 * time_h[-1], 0.0)
    if fault == "ph-probe-drift":  # +0.0005 pH/h: +0.07 at harvest
        out["ph"] = out["ph"] + 0.0005 * after
    elif fault == "do-probe-drift":  # reads 10 % low at harvest
        out["dissolved_oxygen_mg_l"] *= 1 - 0.1 * after / after[-1]
    elif fault == "do-probe-stuck":
        stuck = int(np.argmax(after > 0))
        out.loc[stuck:, "dissolved_oxygen_mg_l"] = out["dissolved_oxygen_mg_l"].iloc[stuck]
    elif fault == "sugar-feed-recipe":  # the whole feed profile 10 % higher
        out["sugar_feed_l_h"] *= 1.1
    return out


def injected_replays(t: Thresholds, dev: Path) -> list[Replay]:
    fs, normal = dev_features(dev), load_dev(dev, "normal")
    labels = ["normal"] * 12 + ["fault"] * 4
    faults = ("ph-probe-drift", "do-probe-drift", "do-probe-stuck", "sugar-feed-recipe")
    return [
        replay(f"dev + {fault}", normal[:12] + [inject(f, fault) for f in normal[12:]], labels,
               fs, t, 8)
        for fault in faults
    ]  # fmt: skip


def simulator_replays(t: Thresholds, seeds: int) -> list[Replay]:
    spec = load_spec(DEFAULT_SPEC)
    fs, ranges = FeatureSpec.from_spec(spec), spec_ranges(spec)
    runs = []
    for hours in (96.0, 72.0):
        cfg = SimConfig(duration_h=hours)
        for seed in range(seeds):
            normal = simulate(16, "normal", seed=1000 + seed, cfg=cfg)
            for scenario in FAULTS:
                changed = simulate(4, scenario, seed=2000 + seed, start=101, cfg=cfg)
                labels = ["normal"] * 16 + [scenario] * 4
                runs.append(replay(f"sim {hours:g} h seed {seed}: {scenario}", normal + changed,
                                   labels, fs, t, 8, ranges=ranges))  # fmt: skip
        stream = simulate(40, "normal", seed=3000, cfg=cfg)
        runs.append(replay(f"sim {hours:g} h: 40 normal", stream, ["normal"] * 40, fs, t, 8,
                           ranges=ranges))  # fmt: skip
    return runs


def html_seconds(t: Thresholds, dev: Path) -> float:
    fs, normal = dev_features(dev), load_dev(dev, "normal")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        check_data_drift(normal[12], normal[7:12], normal[:8], fs, t.drift_p_value,
                         t.drift_share, Path(tmp) / "r.html", limit_level=t.drift_limit_level)  # fmt: skip
        return time.perf_counter() - start


def summarise(group: str, runs: list[Replay]) -> dict[str, object]:
    scores = [r.score() for r in runs]
    delays = [s.delay for s in scores if s.changed]
    return {
        "group": group, "runs": len(runs),
        "false_alarms": sum(s.false_alarms for s in scores),
        "normal_checked": sum(s.normal_checked for s in scores),
        "runs_with_more_than_one_false_alarm": sum(s.false_alarms > 1 for s in scores),
        "delays": delays, "details": [asdict(s) for s in scores],
    }  # fmt: skip


def markdown(groups: list[dict[str, object]], timing: dict[str, float], t: Thresholds) -> str:
    lines = [
        "# Drift decision quality (`benchmarks/drift_quality.py`)", "",
        f"Thresholds: limit level {t.drift_limit_level:g}, confirm {t.drift_confirm_batches}, "
        f"min reference {t.drift_min_reference}, tolerance {t.drift_tolerance:g}; window "
        f"{t.drift_window} batches, K-S p={t.drift_p_value:g}, drift share {t.drift_share:g}.", "",
        "| group | runs | false alarms / normal batches checked | runs with > 1 false alarm | "
        "delays (batches to the first alarm; - = none) |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for g in groups:
        delays = ", ".join(str(d) if d else "-" for d in g["delays"])  # type: ignore[attr-defined]
        lines.append(f"| {g['group']} | {g['runs']} | {g['false_alarms']} / {g['normal_checked']} | "
                     f"{g['runs_with_more_than_one_false_alarm']} | {delays} |")  # fmt: skip
    lines += ["", "| run | normal checked | false alarms | delay (batches) | named |",
              "|---|---|---|---|---|"]  # fmt: skip
    for group in groups:
        for s in group["details"]:  # type: ignore[attr-defined]
            named = ", ".join(s["named"][:3]) if s["changed"] else "(no change)"
            fa = f"{s['false_alarms']} {s['false_alarm_batches']}" if s["false_alarms"] else "0"
            lines.append(f"| {s['name']} | {s['normal_checked']} | {fa} | "
                         f"{s['delay'] or '-'} | {named} |")  # fmt: skip
    lines += ["", f"Seconds per check: median {timing['median_s']:.2f}, max {timing['max_s']:.2f};"
              f" with the HTML report {timing['html_s']:.2f}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=10, help="random orders of the dev set")
    parser.add_argument("--seeds", type=int, default=3, help="simulator seeds per scenario")
    parser.add_argument("--train-only", action="store_true", help="champion reference: train split")
    parser.add_argument("--quick", action="store_true", help="2 orders, 1 seed")
    parser.add_argument("--dev", type=Path, default=DEV, help="the IndPenSim dev set folder")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="threshold overrides, e.g. drift_p_value=0.05")  # fmt: skip
    parser.add_argument("--only", nargs="*", default=["dev", "injected", "simulator"])
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args()
    t = Thresholds.model_validate(dict(kv.split("=", 1) for kv in args.set))
    import monitoring.drift_report  # noqa: F401  (Evidently, ~8 s: not part of a check's time)

    orders, seeds = (2, 1) if args.quick else (args.orders, args.seeds)
    groups = []
    makers = {"dev": lambda: dev_replays(t, orders, args.train_only, args.dev),
              "injected": lambda: injected_replays(t, args.dev), "simulator": lambda: simulator_replays(t, seeds)}  # fmt: skip
    seconds: list[float] = []
    for group in args.only:
        runs = makers[group]()
        groups.append(summarise(group, runs))
        seconds += [s.seconds for r in runs for s in r.steps]
        print(json.dumps({k: v for k, v in groups[-1].items() if k != "details"}), flush=True)
    timing = {
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
        "html_s": html_seconds(t, args.dev),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"thresholds": t.model_dump(), "train_only": args.train_only, "timing": timing,
           "groups": groups}  # fmt: skip
    suffix = ("-train-only" if args.train_only else "") + (f"-{args.tag}" if args.tag else "")
    (RESULTS / f"drift_quality{suffix}.json").write_text(json.dumps(out, indent=2, default=str))
    (RESULTS / f"drift_quality{suffix}.md").write_text(markdown(groups, timing, t))
    print(f"written to {RESULTS}/drift_quality{suffix}.{{json,md}}")


if __name__ == "__main__":
    main()
