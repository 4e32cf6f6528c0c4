"""Accepted batches by id and in arrival order, as the monitor reads them."""

from __future__ import annotations

import pandas as pd

from bioprocessml.accepted import arrival_order
from bioprocessml.events import safe_name
from bioprocessml.settings import Settings


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
