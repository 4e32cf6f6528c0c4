"""Announcing a complete file: record the arrival first, then send its event with the same id.

If sending fails (the Prefect server is down), the arrival is already on record: the sender
retries, and the reconcile flow judges it if no flow run ever takes it up.
"""

from __future__ import annotations

import logging

from bioprocessml.events import BATCH_ARRIVED, ArrivedPayload, arrival_resource, post_event
from bioprocessml.ingest.catalogue import Catalogue
from bioprocessml.settings import Settings

log = logging.getLogger(__name__)


def announce_file(settings: Settings, relative: str, sha256: str, size: int) -> str | None:
    """Record and announce `relative` (a path inside incoming/); returns the arrival id, or None
    when this exact file was announced before and still awaits its verdict (one announcement
    per file, even across restarts of the watcher). Raises when the event cannot be sent."""
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    arrival, _ = catalogue.record_arrival(relative, sha256, size)
    if arrival.emitted_at is not None:
        log.info("%s was announced already (arrival %s)", relative, arrival.id)
        return None
    payload = ArrivedPayload(path=relative, sha256=sha256, size=size)
    post_event(
        settings.prefect_api_url, BATCH_ARRIVED, arrival_resource(relative), payload, arrival.id
    )
    catalogue.mark_emitted(arrival.id)
    return arrival.id
