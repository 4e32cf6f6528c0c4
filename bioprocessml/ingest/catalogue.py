"""The batch catalogue: one row per file that arrived, with its verdict. SQLite, so that
concurrent flow runs can record verdicts safely and a person can query it with any SQL tool.

Every arrival is written here before its event is sent (`arrivals`, keyed by the event id), and
settled in the same transaction as its verdict, so an arrival whose flow run never came or died
is found again by the reconcile flow: nothing arrives without a trace.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Verdict = Literal["accepted", "quarantined", "duplicate", "refused"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    batch_id TEXT,
    verdict TEXT NOT NULL,
    data_version TEXT,
    location TEXT,
    reasons TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_sha ON batches (sha256);
CREATE INDEX IF NOT EXISTS batches_id ON batches (batch_id);
CREATE TABLE IF NOT EXISTS arrivals (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    arrived_at TEXT NOT NULL,
    emitted_at TEXT,
    claimed_at TEXT,
    flow_run_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    settled_at TEXT,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS arrivals_open ON arrivals (settled_at, file, sha256);
"""


class Arrival(BaseModel):
    """A file announced (or found) in incoming/; open until its verdict is recorded."""

    id: str
    file: str
    sha256: str
    size: int
    arrived_at: datetime
    emitted_at: datetime | None = None
    claimed_at: datetime | None = None
    flow_run_id: str | None = None
    attempts: int = 0
    settled_at: datetime | None = None
    outcome: str | None = None

    @property
    def last_touched(self) -> datetime:
        return max(t for t in (self.arrived_at, self.claimed_at) if t is not None)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Entry(BaseModel):
    file: str
    sha256: str
    size: int
    verdict: Verdict
    batch_id: str | None = None
    data_version: str | None = None
    location: str | None = Field(None, description="where the bytes are now, relative to data/")
    reasons: list[str] = []
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class Catalogue:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def add(self, entry: Entry, arrival_id: str | None = None) -> Entry:
        """Record a verdict; the arrival it answers is settled in the same transaction."""
        with self._connect() as db:
            if arrival_id:
                db.execute(
                    "UPDATE arrivals SET settled_at = ?, outcome = ? WHERE id = ?",
                    (_now(), entry.verdict, arrival_id),
                )
            db.execute(
                "INSERT INTO batches (received_at, file, sha256, size, batch_id, verdict,"
                " data_version, location, reasons) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.received_at.isoformat(), entry.file, entry.sha256, entry.size,
                 entry.batch_id, entry.verdict, entry.data_version, entry.location,
                 json.dumps(entry.reasons)),
            )  # fmt: skip
        return entry

    def _select(self, where: str = "1=1", args: tuple[str, ...] = ()) -> list[Entry]:
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM batches WHERE {where} ORDER BY id", args).fetchall()
        return [Entry(**{**dict(row), "reasons": json.loads(row["reasons"])}) for row in rows]

    def entries(self) -> list[Entry]:
        return self._select()

    def processed(self, sha256: str) -> Entry | None:
        """The first accepted or quarantined entry with this content, if any."""
        found = self._select("sha256 = ? AND verdict IN ('accepted', 'quarantined')", (sha256,))
        return found[0] if found else None

    def accepted(self, batch_id: str) -> Entry | None:
        found = self._select("batch_id = ? AND verdict = 'accepted'", (batch_id,))
        return found[0] if found else None

    # --- arrivals ---
    def _arrivals(self, where: str, args: tuple[object, ...] = ()) -> list[Arrival]:
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM arrivals WHERE {where} ORDER BY arrived_at", args)
            return [Arrival(**dict(row)) for row in rows.fetchall()]

    def arrival(self, arrival_id: str) -> Arrival | None:
        found = self._arrivals("id = ?", (arrival_id,))
        return found[0] if found else None

    def open_arrivals(self) -> list[Arrival]:
        return self._arrivals("settled_at IS NULL")

    def arrivals(self) -> list[Arrival]:
        return self._arrivals("1=1")

    def record_arrival(self, file: str, sha256: str, size: int) -> tuple[Arrival, bool]:
        """The open arrival of this exact file (same name and content), or a new one; True if
        new. A second announcement of a file awaiting its verdict is thus not a new arrival."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT * FROM arrivals WHERE settled_at IS NULL AND file = ? AND sha256 = ?",
                (file, sha256),
            ).fetchone()
            if row is not None:
                return Arrival(**dict(row)), False
            arrival = Arrival(
                id=str(uuid.uuid4()),
                file=file,
                sha256=sha256,
                size=size,
                arrived_at=datetime.now(UTC),
            )
            db.execute(
                "INSERT INTO arrivals (id, file, sha256, size, arrived_at) VALUES (?, ?, ?, ?, ?)",
                (arrival.id, file, sha256, size, arrival.arrived_at.isoformat()),
            )
        return arrival, True

    def mark_emitted(self, arrival_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE arrivals SET emitted_at = ? WHERE id = ?", (_now(), arrival_id))

    def claim(
        self, arrival_id: str, file: str, sha256: str, size: int, flow_run_id: str | None
    ) -> Arrival:
        """A flow run takes up an arrival (recorded now if its sender did not); returns it, with
        `settled_at` set when it was settled already (a repeated event)."""
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO arrivals (id, file, sha256, size, arrived_at, emitted_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (arrival_id, file, sha256, size, _now(), _now()),
            )
            db.execute(
                "UPDATE arrivals SET claimed_at = ?, flow_run_id = ?, attempts = attempts + 1"
                " WHERE id = ? AND settled_at IS NULL",
                (_now(), flow_run_id, arrival_id),
            )
            row = db.execute("SELECT * FROM arrivals WHERE id = ?", (arrival_id,)).fetchone()
        return Arrival(**dict(row))

    def settle(self, arrival_id: str, outcome: str) -> None:
        """Close an arrival that needs no verdict of its own (its file was filed already, or
        changed after it was announced and will be announced again)."""
        with self._connect() as db:
            db.execute(
                "UPDATE arrivals SET settled_at = ?, outcome = ? WHERE id = ? AND settled_at IS NULL",
                (_now(), outcome, arrival_id),
            )
