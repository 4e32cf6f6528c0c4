"""The serving database: every prediction the service made, the state of each rollout and
the rows of the batches followed through the incremental API.

One SQLAlchemy URL (SQLite in the state folder by default) shared by the service, the rollout
flow and the CLI, which run in different processes; SQLite runs in WAL mode with a busy timeout
so they can write at the same time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, index=True),
    Column("batch_id", String(128), nullable=False, index=True),
    Column("task", String(32), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("role", String(16), nullable=False, doc="champion | challenger"),
    Column("route", String(16), nullable=False, doc="champion | canary: who answered"),
    Column("served", Boolean, nullable=False, doc="this prediction was returned"),
    Column("batch_time_h", Float, nullable=False),
    Column("mean", Float),
    Column("lower", Float),
    Column("upper", Float),
    Column("error", Text, doc="why the model failed; mean is then null"),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", DateTime(), nullable=False, index=True),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task", String(32), nullable=False, index=True),
    Column("champion_version", String(32), nullable=False),
    Column("challenger_version", String(32), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("started_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)

rollout_evidence = Table(
    "rollout_evidence",
    metadata,
    Column("rollout_id", ForeignKey("rollouts.id"), primary_key=True),
    Column("batch_id", String(128), primary_key=True),
    Column("stage", String(16), nullable=False, doc="stage when the batch was scored"),
    Column("champion_error", Float, nullable=False),
    Column("challenger_error", Float, nullable=False),
    Column("points", Integer, nullable=False),
    Column(
        "canary_answers",
        Integer,
        nullable=False,
        server_default="0",
        doc="challenger answers users received for this batch (canary route)",
    ),
    Column("created_at", DateTime(), nullable=False),
)

rollout_transitions = Table(
    "rollout_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rollout_id", ForeignKey("rollouts.id"), nullable=False, index=True),
    Column("stage", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("batch_id", String(128)),
    Column("at", DateTime(), nullable=False),
)


batch_rows = Table(
    "batch_rows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", String(128), nullable=False, index=True),
    Column("first_row", Integer, nullable=False, doc="position of the block's first row"),
    Column("rows", Integer, nullable=False),
    Column("spec_sha256", String(64), nullable=False, doc="the columns are this spec's"),
    Column("numbers", LargeBinary, nullable=False, doc="float64, (1 + variables) × rows"),
    Column("metadata", Text, nullable=False, doc="JSON: each metadata column's texts"),
    Column("origin", String(64), doc="first time stamp, when the spec's time is a date-time"),
    Column("created_at", DateTime(), nullable=False, index=True),
)


def now() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so every timestamp is stored as UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@cache
def engine_for(url: str) -> Engine:
    """One engine per URL and process, with the tables created if missing."""
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": 30} if sqlite else {})
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine
