"""What an explanation says, in the dataset spec's words: per-prediction attributions (SHAP
values) that add up, with the base value, to the prediction, each naming the spec column it
comes from and that column's unit.

Models see derived features (`temperature_now`, `feed_rate_cum`, …) or encoded sequences; an
explanation is reported per spec column and feature, so an operator reads "temperature_C [degC],
mean of the last 0.5 h: +0.4 g/L", not "x7: 0.4".
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from bioprocessml.spec import DatasetSpec
from models.features import RECENT_H

FEATURE_WORDS = {
    "now": f"mean of the last {RECENT_H:g} h",
    "cum": "amount fed so far (integral of the rate)",
    "int": "integrated deviation from the start",
    "last": "latest assay",
    "rate": "latest assay per elapsed hour",
    "trajectory": "its trajectory so far",
    "assays": "its assays so far",
}
ELAPSED = "elapsed batch time"
FLOOR = "physical floor (the target is never negative)"


class Attribution(BaseModel):
    """One input's share of the prediction, in the target's unit."""

    column: str = Field(description="the dataset spec's column (or what the input is)")
    name: str = Field(description="canonical variable name")
    unit: str = Field(description="unit of the column in the dataset spec")
    feature: str = Field(description="what of the column the model used")
    contribution: float = Field(description="SHAP value: shift of the prediction, target unit")
    value: float | None = Field(None, description="the feature's value (canonical units)")


class Explanation(BaseModel):
    """base_value + Σ contributions = prediction (up to `residual`, reported, never hidden)."""

    model: str
    method: str
    target: str
    unit: str
    base_value: float = Field(description="the prediction for the reference (average) batch")
    prediction: float
    attributions: list[Attribution]

    @property
    def residual(self) -> float:
        return self.prediction - self.base_value - sum(a.contribution for a in self.attributions)

    def top(self, n: int) -> list[Attribution]:
        return sorted(self.attributions, key=lambda a: -abs(a.contribution))[:n]


def column_attribution(
    spec: DatasetSpec, name: str, feature: str, contribution: float, value: float | None = None
) -> Attribution:
    """An attribution to the spec variable `name` (canonical), with its column and unit."""
    variable = spec.variable(name)
    return Attribution(
        column=variable.column,
        name=name,
        unit=variable.unit,
        feature=feature,
        contribution=float(contribution),
        value=value,
    )


def feature_attribution(
    spec: DatasetSpec, feature: str, contribution: float, value: float | None = None
) -> Attribution:
    """An attribution to a tabular feature of `models.features` (`<name>_<kind>`)."""
    if feature == "elapsed_h":
        return Attribution(
            column=spec.time.column,
            name="elapsed_h",
            unit=spec.time.unit,
            feature=ELAPSED,
            contribution=float(contribution),
            value=value,
        )
    if feature == "offline_age_h":
        return Attribution(
            column=spec.time.column,
            name="offline_age_h",
            unit=spec.time.unit,
            feature="hours since the latest assay",
            contribution=float(contribution),
            value=value,
        )
    name, _, kind = feature.rpartition("_")
    return column_attribution(spec, name, FEATURE_WORDS.get(kind, kind), contribution, value)


def floor_attribution(spec: DatasetSpec, shift: float) -> Attribution:
    """What clipping the answer at zero added (so the explanation still adds up)."""
    target = spec.variable(spec.target)
    return Attribution(
        column=target.column,
        name="floor",
        unit=target.unit,
        feature=FLOOR,
        contribution=float(shift),
    )


def explanation(
    spec: DatasetSpec,
    model: str,
    method: str,
    base: float,
    prediction: float,
    attributions: list[Attribution],
) -> Explanation:
    """Attributions that change nothing are dropped; the largest come first."""
    kept = [a for a in attributions if a.contribution != 0.0]
    kept.sort(key=lambda a: -abs(a.contribution))
    target = spec.variable(spec.target)
    return Explanation(
        model=model,
        method=method,
        target=target.column,
        unit=target.canonical_unit,
        base_value=float(base),
        prediction=float(prediction),
        attributions=kept,
    )
