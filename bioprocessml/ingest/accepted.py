"""Accepted batches: by id and in arrival order, and as training data at one exact DVC version."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bioprocessml.dataset import BATCH_ID
from bioprocessml.errors import BioprocessMLError
from bioprocessml.events import safe_name
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.ingest.versioning import current_version, restore_version
from bioprocessml.settings import Settings


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


def read_accepted(settings: Settings, batch_id: str) -> pd.DataFrame:
    return pd.read_csv(settings.accepted_dir / f"{safe_name(batch_id)}.csv")


def accepted_ids(settings: Settings) -> list[str]:
    """Accepted batch ids, oldest arrival first."""
    order = arrival_order(settings)
    return sorted(order, key=order.__getitem__)


def window_ids(settings: Settings, batch_id: str, size: int) -> list[str]:
    """The batch and the accepted batches just before it: the window of the pooled test."""
    ids = accepted_ids(settings)
    end = ids.index(batch_id) + 1 if batch_id in ids else len(ids)
    return ids[max(0, end - size) : end]
