"""The offline gate: which candidate may challenge the champion, and why (or why not)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

Decision = Literal["champion", "challenger", "rejected", "retired"]


class GateResult(BaseModel):
    decision: Decision
    candidate: str
    reason: str


def wilson_interval(successes: float, n: float, z: float = 1.96) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def calibrated(metrics: dict[str, float], bounds: tuple[float, float]) -> bool:
    """Coverage is consistent with `bounds` given the number of held-out points: 11 of 11
    covered is no evidence of too-wide intervals, 70 of 100 is evidence of too-narrow ones."""
    low, high = wilson_interval(metrics["coverage"] * metrics["n"], metrics["n"])
    return high >= bounds[0] and low <= bounds[1]


def pick_best(results: dict[str, dict[str, float]], bounds: tuple[float, float]) -> str:
    """Lowest held-out RMSE among candidates with calibrated intervals (all, if none is)."""
    calibrated_ = {n: m for n, m in results.items() if calibrated(m, bounds)}
    pool = calibrated_ or results
    return min(pool, key=lambda n: pool[n]["rmse"])


def beats_naive(metrics: dict[str, float], naive_margin: float) -> tuple[bool, str]:
    """Lower held-out RMSE than the naive forecast (`models/naive.py`) by `naive_margin`: a model
    that does not is worse than doing nothing and must not serve."""
    naive = metrics.get("naive_rmse")
    if naive is None or naive != naive:
        return True, "no naive forecast to compare with"
    needed = naive * (1 - naive_margin)
    verdict = "beats" if metrics["rmse"] < needed else "does not beat"
    reason = (
        f"RMSE {metrics['rmse']:.4f} {verdict} the naive forecast's {naive:.4f} (what past "
        f"batches say) by the margin {naive_margin:.0%} (needs < {needed:.4f})"
    )
    return verdict == "beats", reason


def offline_gate(
    name: str,
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    margin: float,
    bounds: tuple[float, float],
    naive_margin: float = 0.05,
) -> GateResult:
    """A candidate must have calibrated intervals and beat the naive forecast on the held-out
    batches, bootstrap included; then it is champion if there is none, or challenger only if it
    beats the champion on the same held-out batches by `margin` (relative RMSE)."""
    if not calibrated(candidate, bounds):
        cov, n = candidate["coverage"], int(candidate["n"])
        return GateResult(
            decision="rejected", candidate=name,
            reason=f"coverage {cov:.2f} of {n} held-out points is inconsistent with [{bounds[0]:.2f}, {bounds[1]:.2f}]",
        )  # fmt: skip
    useful, why = beats_naive(candidate, naive_margin)
    if not useful:
        return GateResult(decision="rejected", candidate=name, reason=why)
    if champion is None:
        return GateResult(decision="champion", candidate=name, reason=f"no champion yet; {why}")
    needed = champion["rmse"] * (1 - margin)
    verdict = "beats" if candidate["rmse"] < needed else "does not beat"
    reason = (
        f"RMSE {candidate['rmse']:.4f} {verdict} champion's {champion['rmse']:.4f} "
        f"by the margin {margin:.0%} (needs < {needed:.4f}) on the same held-out batches"
    )
    return GateResult(
        decision="challenger" if verdict == "beats" else "rejected", candidate=name, reason=reason
    )
