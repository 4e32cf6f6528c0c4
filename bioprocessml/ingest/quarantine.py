"""Reading the quarantine: one folder per rejected file with the original bytes and reason.json."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ValidationError

from bioprocessml.errors import BioprocessMLError


class Quarantined(BaseModel):
    quarantine_id: str
    file: str
    sha256: str
    reasons: list[str]
    batch_id: str | None = None
    data_docs: str | None = None


def load_quarantined(quarantine_dir: Path, quarantine_id: str) -> Quarantined:
    path = quarantine_dir / quarantine_id / "reason.json"
    if not path.is_file():
        raise BioprocessMLError(
            f"no quarantined file with id {quarantine_id!r} in {quarantine_dir}"
        )
    try:
        return Quarantined.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise BioprocessMLError(f"{path}: unreadable reason file: {exc}") from None


def list_quarantined(quarantine_dir: Path) -> list[Quarantined]:
    if not quarantine_dir.is_dir():
        return []
    return [
        load_quarantined(quarantine_dir, reason.parent.name)
        for reason in sorted(quarantine_dir.glob("*/reason.json"))
    ]
