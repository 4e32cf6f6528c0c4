"""When a challenger moves on: a paired, batch-wise statistical comparison with the champion.

Each finished batch gives one pair (champion's error, challenger's error) on the same requests, so
batches are the unit of evidence, as they are in training. A one-sided Wilcoxon signed-rank test
on the per-batch differences decides; with n batches its smallest exact p-value is 2^-n, so at
95 % confidence no verdict is possible before 5 batches. Until then a challenger whose mean error
is clearly higher (beyond `canary_tolerance`) stays in shadow rather than reach users.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy.stats import wilcoxon

from bioprocessml.settings import Rollout

Stage = Literal["shadow", "canary", "promoted", "rolled_back"]
ACTIVE: tuple[Stage, ...] = ("shadow", "canary")


class PairedTest(BaseModel):
    """Challenger error minus champion error per batch; p-values of both one-sided tests."""

    n: int
    mean_difference: float
    relative_difference: float
    p_better: float
    p_worse: float

    def summary(self) -> str:
        return (
            f"{self.n} batches, challenger error {self.relative_difference:+.1%} vs champion "
            f"(p better {self.p_better:.3f}, p worse {self.p_worse:.3f})"
        )


class Decision(BaseModel):
    stage: Stage
    reason: str
    test: PairedTest | None = None


def paired_test(champion: list[float], challenger: list[float]) -> PairedTest:
    """One-sided Wilcoxon signed-rank tests of the per-batch error differences (exact for small
    n). Identical errors give p = 1 both ways: no evidence either way."""
    a, b = np.asarray(champion, dtype=float), np.asarray(challenger, dtype=float)
    diff = b - a
    n = len(diff)
    relative = float(diff.mean() / a.mean()) if n and a.mean() > 0 else 0.0
    if n == 0 or np.allclose(diff, 0.0, atol=1e-12):
        return PairedTest(
            n=n, mean_difference=0.0, relative_difference=0.0, p_better=1.0, p_worse=1.0
        )
    return PairedTest(
        n=n,
        mean_difference=float(diff.mean()),
        relative_difference=relative,
        p_better=float(wilcoxon(diff, alternative="less").pvalue),
        p_worse=float(wilcoxon(diff, alternative="greater").pvalue),
    )


def decide(
    stage: Stage,
    champion_errors: list[float],
    challenger_errors: list[float],
    canary_batches: int,
    challenger_requests: int,
    challenger_failures: int,
    rules: Rollout,
    canary_answers: int = 0,
) -> Decision:
    """Next stage of an active rollout from the evidence so far (the stage itself if undecided).
    `canary_batches`/`canary_answers`: finished batches in canary whose users got the
    challenger's answer, and how many such answers: promotion needs both, not shadow work."""
    if stage not in ACTIVE:
        raise ValueError(f"rollout already ended: {stage}")
    alpha = 1.0 - rules.confidence
    if challenger_requests >= rules.min_requests_for_error_rate:
        rate = challenger_failures / challenger_requests
        if rate > rules.max_error_rate:
            return Decision(
                stage="rolled_back",
                reason=f"challenger failed {challenger_failures} of {challenger_requests} "
                f"predictions ({rate:.1%} > {rules.max_error_rate:.1%})",
            )
    test = paired_test(champion_errors, challenger_errors)
    if test.p_worse < alpha:
        return Decision(stage="rolled_back", reason=f"worse: {test.summary()}", test=test)
    if stage == "shadow":
        if test.n < rules.min_batches:
            return Decision(
                stage=stage, reason=f"waiting for {rules.min_batches} batches", test=test
            )
        if test.relative_difference > rules.canary_tolerance:
            return Decision(
                stage=stage, reason=f"too uncertain for canary: {test.summary()}", test=test
            )
        return Decision(stage="canary", reason=f"not worse: {test.summary()}", test=test)
    served = (
        canary_batches >= rules.canary_min_batches and canary_answers >= rules.min_canary_answers
    )
    if served and test.p_better < alpha:
        return Decision(
            stage="promoted",
            reason=f"better: {test.summary()}; {canary_answers} canary answers in {canary_batches} batches",
            test=test,
        )
    if test.n >= rules.max_batches:
        return Decision(
            stage="rolled_back",
            reason=f"not better after {test.n} batches: {test.summary()}",
            test=test,
        )
    if test.p_better < alpha:
        reason = (f"better, but users got only {canary_answers} canary answers in {canary_batches} "
                  f"batches (needs {rules.min_canary_answers} in {rules.canary_min_batches}): "
                  f"{test.summary()}")  # fmt: skip
        return Decision(stage=stage, reason=reason, test=test)
    return Decision(stage=stage, reason=f"undecided: {test.summary()}", test=test)
