"""The batch catalogue: one row per file that arrived, with its verdict. SQLite, so that
concurrent flow runs can record verdicts safely and a person can query it with any SQL tool."""

from __future__ import annotations

import json
import sqlite3
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
"""


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

    def add(self, entry: Entry) -> Entry:
        with self._connect() as db:
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
