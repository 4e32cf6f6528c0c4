"""Dataset spec: a YAML description of a user's batch files, validated with pydantic.

Every stage reads batch columns only through the spec, so a plant's own CSV export (other column
names, other units, batch id in the file name) works without code changes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from bioprocessml.errors import SpecError
from bioprocessml.units import DATETIME, dimension_of, get_unit, to_canonical

Identifier = str
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
Role = Literal["measured", "manipulated", "feed", "offgas"]
# A feed is integrated over time into the amount fed, so its unit must be a flow.
FEED_DIMENSIONS = ("flow", "mass_flow", "molar_flow")

# The CSV dialects and encodings a spec may declare; the loader reports anything else.
Encoding = Literal["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariableSpec(_Strict):
    """One measured column: its canonical `name`, its header in the file, its unit and plausible range."""

    name: Identifier
    column: str = Field(min_length=1)
    unit: str
    range: tuple[float, float] | None = None
    optional: bool = False
    role: Role = "measured"
    max_missing: float = Field(default=0.05, ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a lower_snake_case identifier")
        return value

    @field_validator("unit")
    @classmethod
    def _check_unit(cls, value: str) -> str:
        get_unit(value)
        return value

    @field_validator("range")
    @classmethod
    def _check_range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _check_role(self) -> VariableSpec:
        if self.role == "feed" and self.dimension not in FEED_DIMENSIONS:
            raise ValueError(
                f"a feed is integrated over time into the amount fed, so its unit must be a flow "
                f"(e.g. L/h, mL/min, g/h), got {self.unit!r} ({self.dimension})"
            )
        return self

    @property
    def dimension(self) -> str:
        return dimension_of(self.unit)

    @property
    def canonical_unit(self) -> str:
        return get_unit(self.unit).canonical

    @property
    def canonical_range(self) -> tuple[float, float] | None:
        """The plausible range in canonical units (all unit maps are increasing)."""
        if self.range is None:
            return None
        low, high = to_canonical(list(self.range), self.unit)
        return float(low), float(high)


class TimeSpec(_Strict):
    """The time column: elapsed time in a unit of time, or timestamps (`unit: datetime`), read
    by `format`, their strftime pattern (e.g. '%d.%m.%Y %H:%M'), if given, else as
    `units.read_timestamps` says (ISO 8601 or one unambiguous common pattern)."""

    column: str = Field(min_length=1)
    unit: str = "h"
    format: str | None = None

    @field_validator("unit")
    @classmethod
    def _check_unit(cls, value: str) -> str:
        if value != DATETIME and dimension_of(value) != "time":
            raise ValueError(f"time unit must be a unit of time or {DATETIME!r}, got {value!r}")
        return value

    @model_validator(mode="after")
    def _format_for_timestamps(self) -> TimeSpec:
        if self.format is not None and self.unit != DATETIME:
            raise ValueError(f"format is for timestamps (unit: {DATETIME}), not unit {self.unit!r}")
        if self.format is not None:
            moment = datetime(2026, 11, 23, 13, 45)  # a day above 12, an afternoon
            try:
                back = datetime.strptime(moment.strftime(self.format), self.format)
            except ValueError as exc:
                raise ValueError(f"format {self.format!r} cannot be read back: {exc}") from None
            if back != moment:
                raise ValueError(
                    f"format {self.format!r} must hold the date and the time of day (as in "
                    f"'%d.%m.%Y %H:%M'): it reads {moment:%Y-%m-%d %H:%M} back as {back}"
                )
        return self


class BatchIdSpec(_Strict):
    """Where the batch id comes from: a column, or a regex on the file name with group `batch_id`."""

    column: str | None = None
    filename_pattern: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchIdSpec:
        if (self.column is None) == (self.filename_pattern is None):
            raise ValueError("give exactly one of 'column' or 'filename_pattern'")
        if self.filename_pattern is not None:
            try:
                pattern = re.compile(self.filename_pattern)
            except re.error as exc:
                raise ValueError(f"filename_pattern is not a valid regex: {exc}") from None
            if "batch_id" not in pattern.groupindex:
                raise ValueError("filename_pattern needs a named group (?P<batch_id>...)")
        return self


class MetadataSpec(_Strict):
    name: Identifier
    column: str = Field(min_length=1)
    optional: bool = True


class CsvFormat(_Strict):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."
    encoding: Encoding = "utf-8"


class BatchRules(_Strict):
    """Whole-batch rules the validation stage enforces."""

    min_rows: int = Field(default=20, ge=2)
    min_duration_h: float = Field(default=1.0, gt=0)
    max_gap_h: float | None = Field(default=None, gt=0)


class DatasetSpec(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    batch_id: BatchIdSpec
    time: TimeSpec
    online: list[VariableSpec] = Field(min_length=1)
    offline: list[VariableSpec] = Field(min_length=1)
    target: Identifier
    # Columns loaded and range-checked but never a model input nor a drift feature, e.g. a
    # simulator's states that no plant measures online.
    unmeasured: list[VariableSpec] = []
    metadata: list[MetadataSpec] = []
    csv: CsvFormat = CsvFormat()
    rules: BatchRules = BatchRules()

    _source: Path | None = PrivateAttr(default=None)
    _sha256: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _check_consistency(self) -> DatasetSpec:
        names = ["time", *[v.name for v in self.variables], *[m.name for m in self.metadata]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names must be unique; repeated: {duplicates}")
        columns = [c for c in self.file_columns]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"file columns must be unique; repeated: {repeated}")
        if self.target not in {v.name for v in self.offline}:
            offline = [v.name for v in self.offline]
            raise ValueError(f"target {self.target!r} must name an offline variable {offline}")
        return self

    @property
    def variables(self) -> list[VariableSpec]:
        """Every numeric column: online, offline, then unmeasured."""
        return [*self.online, *self.offline, *self.unmeasured]

    @property
    def file_columns(self) -> list[str]:
        """Every column header the spec knows, in file order (batch id, time, variables, metadata)."""
        head = [self.batch_id.column] if self.batch_id.column else []
        rest = [v.column for v in self.variables] + [m.column for m in self.metadata]
        return [*head, self.time.column, *rest]

    def variable(self, name: str) -> VariableSpec:
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(f"dataset spec {self.name!r} has no variable {name!r}")

    def names_with(self, *, dimension: str | None = None, role: Role | None = None) -> list[str]:
        """Canonical names of variables of a dimension (e.g. 'concentration') and/or a role."""
        return [
            v.name
            for v in self.variables
            if (dimension is None or v.dimension == dimension) and (role is None or v.role == role)
        ]

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def sha256(self) -> str:
        """Hash of the spec file's bytes: recorded as lineage with every model."""
        return self._sha256


def _format_loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts) or "(top level)"


def _describe(error: ValidationError, raw: dict[str, object]) -> str:
    lines = []
    for err in error.errors():
        loc = tuple(err["loc"])
        where = _format_loc(loc)
        # Name the variable too, so "online[3].unit" reads as "online[3] (temp_K).unit".
        if (
            len(loc) >= 2
            and loc[0] in ("online", "offline", "unmeasured", "metadata")
            and isinstance(loc[1], int)
        ):
            items = raw.get(str(loc[0]))
            if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
                label = items[loc[1]].get("name") or items[loc[1]].get("column")
                if label:
                    where = where.replace(f"[{loc[1]}]", f"[{loc[1]}] ({label})", 1)
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a spec; any problem raises SpecError naming the file and the field."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: dataset spec not found") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read dataset spec: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a dataset spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{path}: invalid dataset spec: {_describe(exc, raw)}") from None
    spec._source = path
    spec._sha256 = hashlib.sha256(text).hexdigest()
    return spec
