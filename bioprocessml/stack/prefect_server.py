"""`prefect server start`, with SQLite transactions that wait for the write lock instead of failing.

Prefect's server opens its read-then-write transactions DEFERRED on SQLite (creating a flow run
from a deployment reads the deployment, then inserts). When another connection commits between
the read and the write, SQLite fails the write at once (`database is locked`, SQLITE_BUSY_SNAPSHOT:
its busy timeout does not apply), the API answers 503 and Prefect's clients sleep 2, 4, 8, … s
before asking again. Under the chain's writes (flow runs, states, events of every batch) that
added ~2 s to most accepted → monitoring hops and, after bursts, stalled the API for tens of
seconds (PrefectHQ/prefect#18934). Beginning every transaction IMMEDIATE takes the write lock
at BEGIN, so a writer waits in SQLite's busy handler for milliseconds instead; Prefect already
does so for its `with_for_update` transactions. A PostgreSQL database is not touched.

The price: a transaction holds the lock from BEGIN to COMMIT, so one that waits on something
else meanwhile stalls every writer (their busy waits end in "database is locked" after 60 s).
A write transaction that held the lock or waited for it over `SLOW_LOCK_S` is logged with its
first statement, so the server's log names what held it.

    python -m bioprocessml.stack.prefect_server --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

log = logging.getLogger("prefect.server.database.write_lock")

SLOW_LOCK_S = 5.0


def immediate_sqlite_transactions() -> None:
    """Make every transaction of Prefect's SQLite configuration begin IMMEDIATE."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    original = AioSqliteConfiguration.begin_transaction
    if getattr(original, "immediate", False):
        return

    def begin_transaction(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AbstractAsyncContextManager[Any]:
        return original(self, session, with_for_update=True)

    begin_transaction.immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign,assignment]


def _asked(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    if statement.startswith("BEGIN IMMEDIATE"):
        conn.info["write_lock"] = {"asked": time.monotonic(), "first": None}
    elif (lock := conn.info.get("write_lock")) and lock["first"] is None:
        lock["first"] = " ".join(statement.split())[:300]


def _taken(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    if statement.startswith("BEGIN IMMEDIATE") and (lock := conn.info.get("write_lock")):
        lock["taken"] = time.monotonic()


def _released(conn: Any) -> None:
    lock = conn.info.pop("write_lock", None)
    if not lock or "taken" not in lock:
        return
    waited, held = lock["taken"] - lock["asked"], time.monotonic() - lock["taken"]
    if max(waited, held) > SLOW_LOCK_S:
        log.warning("SQLite write lock waited for %.1f s, then held %.1f s by a transaction "
                    "beginning %s", waited, held, lock["first"])  # fmt: skip


_LOCK_EVENTS = (("before_cursor_execute", _asked), ("after_cursor_execute", _taken),
                ("commit", _released), ("rollback", _released))  # fmt: skip


def log_slow_write_locks(on: bool = True) -> None:
    """Log every `BEGIN IMMEDIATE` transaction of this process (any engine) that waited for the
    write lock or held it for over `SLOW_LOCK_S` seconds, with its first statement; `on=False`
    stops it."""
    import sqlalchemy as sa

    for name, listener in _LOCK_EVENTS:
        if on and not sa.event.contains(sa.engine.Engine, name, listener):
            sa.event.listen(sa.engine.Engine, name, listener)
        elif not on and sa.event.contains(sa.engine.Engine, name, listener):
            sa.event.remove(sa.engine.Engine, name, listener)


def main() -> None:
    """Run `prefect server start ARGS` in this process with the changes above."""
    from prefect.cli import app

    immediate_sqlite_transactions()
    log_slow_write_locks()
    sys.argv = ["prefect", "server", "start", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
