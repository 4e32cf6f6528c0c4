"""Finding lost arrivals again: open arrivals no live flow run holds, and files in incoming/
that were never announced (the watcher was down), are judged here like any arrival.

The ingest lock and the catalogue make this safe beside the normal path: an arrival settled in
the meantime is not judged twice, and a file that was filed already is recognised.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Collection
from datetime import UTC, datetime

from bioprocessml.ingest.arrival import Ingestor, IngestResult
from bioprocessml.ingest.catalogue import Arrival, Catalogue
from bioprocessml.ingest.watcher import file_sha256, is_candidate
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec

log = logging.getLogger(__name__)


def unannounced(settings: Settings, grace: float) -> list[Arrival]:
    """Record an arrival for each file that has sat unchanged in incoming/ for `grace` s with
    no open arrival of its content (the watcher missed it or was down)."""
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    known = {(a.file, a.sha256) for a in catalogue.open_arrivals()}
    incoming = settings.incoming_dir.resolve()
    found = []
    for path in sorted(incoming.rglob("*")):
        try:
            if not path.is_file() or not is_candidate(path) or path.is_symlink():
                continue
            if time.time() - path.stat().st_mtime < grace:
                continue  # may still be written; the watcher has it
            relative = str(path.relative_to(incoming))
            digest = file_sha256(path)
            size = path.stat().st_size
        except OSError:
            continue  # gone meanwhile
        if (relative, digest) not in known:
            try:
                arrival, _ = catalogue.record_arrival(relative, digest, size)
            except sqlite3.Error as exc:
                log.error("%s stays in incoming/ unrecorded: %s", relative, exc)
                continue
            found.append(arrival)
    return found


def unsettled(settings: Settings, in_flight: Collection[str], grace: float) -> list[Arrival]:
    """Open arrivals older than `grace` s (since arrival or last claim) that no live flow run
    holds, then files in incoming/ with no arrival at all."""
    catalogue = Catalogue(settings.data_dir / "catalogue.db")
    now = datetime.now(UTC)
    stale = [
        a for a in catalogue.open_arrivals()
        if a.id not in in_flight and (now - a.last_touched).total_seconds() >= grace
    ]  # fmt: skip
    return stale + unannounced(settings, grace)


def settle_arrivals(
    settings: Settings, spec: DatasetSpec, in_flight: Collection[str], grace: float
) -> list[IngestResult]:
    """Judge every lost arrival. One that fails again (e.g. the disk is full) stays open, its
    file in incoming/, with the reason logged: the next reconcile tries again."""
    results = []
    for arrival in unsettled(settings, in_flight, grace):
        log.warning(
            "arrival %s of %s (attempt %d) has no verdict and no live flow run: judging it now",
            arrival.id, arrival.file, arrival.attempts + 1,
        )  # fmt: skip
        try:
            ingestor = Ingestor(settings, spec)
            results.append(ingestor.ingest(arrival.file, arrival.sha256, arrival.id))
        except (OSError, sqlite3.Error) as exc:  # e.g. the data folder's disk is full
            log.error("%s stays in incoming/: %s: %s", arrival.file, type(exc).__name__, exc)
    return results
