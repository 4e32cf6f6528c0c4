"""Markdown tables of `benchmarks/accuracy.py`'s results, with the issue-15 checks computed
from the numbers (nothing here is typed in by hand except the plain-words notes)."""

from __future__ import annotations

from typing import Any

NOTES = """
**Hybrid, in plain words.** Good: a titer that is physically shaped (never negative, zero before
production starts, diluted by the measured feeds and volume) from one linear production rate
(few parameters, robust with a dozen batches, fitted in seconds); restarted from the lab titer
(`hybrid+assays`) it tracks the titer best of all on the dev set; its late harvest forecast
(75 % of batch time) is the best there. Bad: with online signals only it drifts over the batch
when a batch's productivity differs from what its sensors show (the error grows with batch
time, like every online-only soft sensor here, and a few batches are far off: pooled coverage
well below 95 %); the rate is linear in the signals, so after the +1 K temperature shift (many
standard deviations of a tightly controlled input) the stale model extrapolates wildly until
retrained (then it is the best online soft sensor on the changed batches); its early harvest
forecasts (25–50 %) are a persistence rule on the titer now, no better than naive at 25 %.

**Calibration, and why some rows miss the [0.90, 0.97] band.** Every candidate's interval is an
elapsed-time scale times one factor, both from out-of-fold residuals (each from a model that
never saw the batch), the factor set so that the *median held-out batch* covers 93.5 % of its
points, the middle of the band (Harrell–Davis median over batches of each batch's 93.5 %
quantile of |z|; aimed at 95 % it sat on the band's upper edge). The `+assays` width grows
with the age of the newest assay as the within-batch variogram of those residuals says
(nugget + random walk + drift), calibrated at assays one spacing apart; the hourly points
between assays are scored against the true titer. A soft sensor's or forecast's error is
mostly a batch-level offset, so a batch is covered at nearly all of its points or at few:
the range of widths at which the median of 16 held-out batches lands in the band is narrow
(the "passes at" multiples in the checks), narrower than the factor's spread between
training folds of 12 batches (±10–20 %), and which side a row misses on changes with the
data. Variants replayed on the recorded folds (`benchmarks/calibration_replay.py`: a
Gaussian random-effect factor, a robust time scale, a bootstrap aimed at the band, assays
smoothed before calibrating, the `+assays` width without the anchor's share of the nugget)
moved rows in and out without a net gain on both data sets. What did help was making the
out-of-fold residuals look like the final model's errors: the LSTM's came from one member
each, while it answers with the mean of five (its residuals are now shrunk by the members'
spread, `models.lstm.as_ensemble`: dev LSTM 1.00 → 0.93); the GP's calibration folds held out
a fifth of 12 batches, and the GP fitted on all 12 erred 0.67× what they said (now one batch
out up to 20 batches: 0.84×; dev GP+assays 0.98 → 0.95). Pooled coverage sits below the
per-batch median: the batches an online soft sensor misses, it misses at most hours.

**Seeds.** The LSTM's per-batch coverage moves by up to 0.2 with nothing but its training seed
(the table "Dev set again with other training seeds": the folds, data and code are the same),
at the same RMSE: which members see which batches, and how 300 epochs of training settle,
shift its calibration factor more than the band allows. It also trains differently on another
CPU (floating-point order: the same code and seed gave LSTM 0.93 and harvest LSTM 1.00 on the
machine of the previous run, 0.98 and 0.97 here). PLS and the exact GP do not depend on the
seed, the hybrid hardly. A row's place inside or outside the band is therefore only meaningful
across seeds for the LSTM.

**How much the band owes to which batches.** `benchmarks/calibration_replay.py odds` keeps
every model's held-out predictions and redraws, with replacement, each fold's training batches
the calibrations are fitted on (and, second column, the 16 scored batches too: other batches
of the same kind), 400 times (`benchmarks/results/band_odds.json`). Dev set: PLS+assays and
GP+assays land in the band in 96–97 % of draws, GP 77 %, PLS 49 %, hybrid+assays 52 %,
LSTM+assays 56 %, LSTM 36 %, hybrid 26 %, the harvest rows 15–29 % (a batch's harvest coverage
moves in steps of 1/19: only a median of 0.921 or 0.947 is inside); on average 5.7 of 12 rows,
all 12 at once in none of the 400 draws (simulator: 5.6 of 12, none). The recorded 7 of 12 is
a typical draw. So where an online soft sensor's error is a batch offset, inside or outside
the band is decided mostly by which dozen batches trained it and which 16 scored it, not by
the calibration: one held-out fold of the dev set has 2× the error of its training batches for
every candidate (harvest RMSE 2.4–2.7 against 1.2–1.4 out of fold), and the median batch
falls on one side of the band or the other with it.

**Tried, not kept (this round).** The hybrid's folds leaving one batch out, as the GP's
(online 0.97 → 0.84, harvest 0.92 → 0.87: its fold models err like the final one already).
The GP's calibration folds started cold instead of from the full fit (harvest GP stays 0.84,
fit 2.5× longer: not a leak of the full fit's hyperparameters). The `+assays` width below one
assay spacing grown in proportion to the age (on the dev set the error 1–5 h after an assay is
0.04–0.5 of the error 12 h after it, about ∝ age, for GP and LSTM bases; there the youngest
hours are covered at 0.98–1.00): on the simulator's noisy assays the fixed-seed test's
GP+assays then covered 0.54–0.79 at 3 of 5 seeds, since at a fresh assay the interval must
still hold the lab's error, which assays one spacing apart cannot tell from the rest of the
nugget. Ten LSTM members instead of five (each fold model sees more batches): online 0.98 →
0.79, LSTM+assays 0.98 → 0.97, harvest 0.97 → 0.92, fit 2.5× longer. Widening the LSTM's
interval by its members' disagreement on each history: the badly missed batches are not the
ones the members disagree on (harvest pooled coverage 0.75 → 0.74).

**Harvest forecast at every hour.** The forecasts are trained and scored at 19 cuts (10, 15, …
100 % of the batch); the service answers at any hour. Scored at every hour from 10 % on
("every hour" column) the GP, LSTM and hybrid keep their coverage, PLS falls (per-batch
median 0.75): assays come on a schedule, so at the fixed cuts the newest assay always has the
same age. Cuts moved by batch (tried, not kept) put PLS back at 0.95 every hour but cost it
accuracy at 50 % (28 % better than naive instead of 36 %) and moved other rows out of the band.

**Caveats.** On the built-in simulator the product yields vary by batch and move no online
signal (a floor for online soft sensors); its assays are sparse and noisy (3 % + 0.02 g/L:
0.062 g/L RMS against the true titer, close to the GP's own 0.077 g/L error), so the `+assays`
gain is smaller there, and intervals calibrated on residuals against the assays (all a plant
has) are wider than the true titer needs: there the GP and hybrid cover every point of the
median batch. The dev set's assays equal the true titer. Timings are on a shared 2-core machine under load from other
jobs (upper bounds).
"""


BAND = (0.90, 0.97)  # where a batch-calibrated 95 % interval's per-batch median coverage should be


def in_band(coverage: Any) -> Any:
    """Whether coverage (a number, or elementwise an array) is inside `BAND`."""
    return (coverage >= BAND[0]) & (coverage <= BAND[1])


def _f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def soft_table(table: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| soft sensor | RMSE g/L | batch RMSE median / max | coverage pooled | coverage per-batch median | width | fit s | predict s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, m in table.items():
        if key.startswith("soft_sensor/"):
            lines.append(
                f"| {key.split('/')[1]} | {_f(m['rmse'], 3)} | {_f(m['batch_rmse_median'])} / "
                f"{_f(m['batch_rmse_max'])} | {_f(m['coverage'])} | {_f(m['batch_coverage_median'])} "
                f"| {_f(m['width'])} | {_f(m['fit_s'], 1)} | {_f(m['predict_s'], 1)} |"
            )
    return lines


def harvest_table(table: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        "| harvest | RMSE @25 % (naive) | @50 % (naive) | @75 % (naive) | gain 25/50/75 | width 25/50/75 | coverage pooled / batch median | every hour: pooled / batch median | fit s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, m in table.items():
        if key.startswith("harvest/"):
            at = [f"{_f(m[f'rmse_at_{h}'])} ({_f(m[f'naive_rmse_at_{h}'])})" for h in (25, 50, 75)]
            gains = "/".join(f"{m[f'gain_at_{h}']:.0%}" for h in (25, 50, 75))
            widths = "/".join(_f(m[f"width_at_{h}"], 1) for h in (25, 50, 75))
            lines.append(
                f"| {key.split('/')[1]} | {' | '.join(at)} | {gains} | {widths} | "
                f"{_f(m['coverage'])} / {_f(m['batch_coverage_median'])} | "
                f"{_f(m.get('hourly_coverage', float('nan')))} / "
                f"{_f(m.get('hourly_batch_coverage_median', float('nan')))} | {_f(m['fit_s'], 1)} |"
            )
    return lines


def _widths(metrics: dict[str, float]) -> str:
    """The multiples of the interval width that would have put the row in the band."""
    low, high = metrics.get("passing_width_low"), metrics.get("passing_width_high")
    if low is None or high is None:
        return f"{metrics['batch_coverage_median']:.2f}"
    if low != low:
        return f"{metrics['batch_coverage_median']:.2f}, no width in ×0.4–2.5 passes"
    return f"{metrics['batch_coverage_median']:.2f}, passes at ×{low:.2f}–{high:.2f} the width"


def checks(table: dict[str, dict[str, float]]) -> list[str]:
    """The Done-when items of issue 15 that these numbers decide."""
    soft = {k.split("/")[1]: v for k, v in table.items() if k.startswith("soft_sensor/")}
    harvest = {k.split("/")[1]: v for k, v in table.items() if k.startswith("harvest/")}
    out = []
    if "gp" in soft and "pls" in soft:
        pls = soft["pls"]["rmse"]
        online = {k: v for k, v in soft.items() if "+" not in k}
        best = min(online, key=lambda k: online[k]["rmse"])
        out.append(
            f"- GP RMSE ≤ PLS (online): {soft['gp']['rmse'] <= pls} ({_f(soft['gp']['rmse'], 3)} vs {_f(pls, 3)})"
        )
        out.append(
            f"- best online candidate ≤ 0.9 × PLS: {online[best]['rmse'] <= 0.9 * pls} ({best}, {online[best]['rmse'] / pls:.2f} × PLS)"
        )
        anchored = {k: v for k, v in soft.items() if "+" in k}
        if anchored:
            top = min(anchored, key=lambda k: anchored[k]["rmse"])
            out.append(
                f"- best `+assays` candidate: {top}, {anchored[top]['rmse'] / pls:.2f} × PLS (online)"
            )
    rows = {**soft, **{f"harvest {k}": v for k, v in harvest.items()}}
    bad = [k for k, v in rows.items() if not in_band(v["batch_coverage_median"])]
    out.append(
        f"- per-batch median coverage in [0.90, 0.97] for every row: {not bad}"
        + (f" (not: {', '.join(f'{k} {_widths(rows[k])}' for k in bad)})" if bad else "")
    )
    if harvest:
        best = min(harvest, key=lambda k: harvest[k]["rmse_at_50"] + harvest[k]["rmse_at_75"])
        m = harvest[best]
        ok = m["gain_at_50"] >= 0.15 and m["gain_at_75"] >= 0.15 and m["gain_at_25"] > 0
        out.append(
            f"- harvest, best ({best}) ≥ 15 % better than naive at 50 and 75 %, better at 25 %: {ok} "
            f"({m['gain_at_25']:.0%} / {m['gain_at_50']:.0%} / {m['gain_at_75']:.0%})"
        )
    return out


def change_table(change: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    lines = [
        "| candidate | soft RMSE stale → retrained | soft coverage (batch median) stale → retrained | harvest RMSE @50 % stale → retrained | @75 % |",
        "|---|---|---|---|---|",
    ]
    stale, new = change["trained_on_normal_only"], change["retrained_with_changed"]
    for key in stale:
        if not key.startswith("soft_sensor/"):
            continue
        name = key.split("/")[1]
        h = f"harvest/{name}"
        harvest = (
            f"{_f(stale[h]['rmse_at_50'])} → {_f(new[h]['rmse_at_50'])} | "
            f"{_f(stale[h]['rmse_at_75'])} → {_f(new[h]['rmse_at_75'])}"
            if h in stale else "– | –"
        )  # fmt: skip
        lines.append(
            f"| {name} | {_f(stale[key]['rmse'], 3)} → {_f(new[key]['rmse'], 3)} | "
            f"{_f(stale[key]['batch_coverage_median'])} → {_f(new[key]['batch_coverage_median'])} | {harvest} |"
        )
    return lines


def cost_table(rows: list[dict[str, float]]) -> list[str]:
    keys = [k for k in rows[0] if k.endswith("_s") and k != "total_s"]
    lines = [
        "| batches | total s | " + " | ".join(k.removesuffix("_s") for k in keys) + " |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {int(r['batches'])} | {r['total_s']:.0f} | "
            + " | ".join(f"{r[k]:.1f}" for k in keys)
            + " |"
        )
    return lines


def seed_table(main: dict[str, dict[str, float]], seeds: dict[str, Any]) -> list[str]:
    """Each dev row at every training seed: what moves with nothing but the seed."""
    runs = {"0": main, **seeds}
    names = " / ".join(runs)
    lines = [
        f"| row | RMSE g/L, seed {names} | coverage per-batch median, seed {names} |",
        "|---|---|---|",
    ]
    for key in main:
        rmse = " / ".join(_f(r[key]["rmse"], 3) for r in runs.values())
        cover = " / ".join(_f(r[key]["batch_coverage_median"], 3) for r in runs.values())
        lines.append(f"| {key.replace('soft_sensor/', '').replace('/', ' ')} | {rmse} | {cover} |")
    inside = [sum(in_band(m["batch_coverage_median"]) for m in r.values()) for r in runs.values()]
    lines += ["", f"Rows in [0.90, 0.97], seed {names}: " + " / ".join(f"{n} of {len(main)}"
                                                                  for n in inside)]  # fmt: skip
    return lines


def markdown(results: dict[str, Any]) -> str:
    parts = ["# Accuracy benchmark (issue 15)", "", "`.venv/bin/python benchmarks/accuracy.py`", ""]
    for key, title in (("dev", "IndPenSim dev set: 16 normal batches, 4 folds grouped by batch"),
                       ("simulator", "Built-in simulator, 4 folds grouped by batch")):  # fmt: skip
        if key in results:
            table = results[key]
            parts += [f"## {title}", "", *soft_table(table), "", *harvest_table(table), "",
                      "Checks:", *checks(table), ""]  # fmt: skip
    if results.get("dev_seeds") and "dev" in results:
        parts += ["## Dev set again with other training seeds (same folds)", "",
                  *seed_table(results["dev"], results["dev_seeds"]), ""]  # fmt: skip
    if "process_change" in results:
        parts += ["## Process change (temperature shift, dev set): 3 changed batches scored", "",
                  *change_table(results["process_change"]), ""]  # fmt: skip
    if "retraining" in results:
        parts += ["## Retraining every candidate, both tasks (+assays calibration)", "",
                  *cost_table(results["retraining"]), ""]  # fmt: skip
    parts.append(NOTES)
    return "\n".join(parts)
