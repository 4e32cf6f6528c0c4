"""Accepted batches as training data, read at one exact DVC data version."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bioprocessml.catalogue import Catalogue
from bioprocessml.dataset import BATCH_ID
from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import Settings
from bioprocessml.versioning import current_version, restore_version


@dataclass
class TrainingData:
    batches: list[pd.DataFrame]  # canonical frames, oldest arrival first
    data_version: str

    @property
    def batch_ids(self) -> list[str]:
        return [str(frame[BATCH_ID].iloc[0]) for frame in self.batches]


def arrival_order(settings: Settings) -> dict[str, int]:
    entries = Catalogue(settings.data_dir / "catalogue.db").entries()
    return {e.batch_id: i for i, e in enumerate(entries) if e.verdict == "accepted" and e.batch_id}


def load_training_data(settings: Settings, md5: str | None = None) -> TrainingData:
    """Restore the accepted folder at `md5` (default: the current version) and read it, so a
    model's lineage tag names exactly the files it was trained on."""
    version = md5 or (v.md5 if (v := current_version(settings.data_dir)) else None)
    if version is None:
        raise BioprocessMLError(f"no accepted data in {settings.data_dir}: ingest batches first")
    with tempfile.TemporaryDirectory() as tmp:
        paths = restore_version(settings.data_dir, version, Path(tmp) / "accepted")
        frames = [pd.read_csv(p) for p in paths]
    order = arrival_order(settings)
    frames.sort(
        key=lambda f: (order.get(str(f[BATCH_ID].iloc[0]), len(order)), str(f[BATCH_ID].iloc[0]))
    )
    return TrainingData(frames, version)
