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

Waiting in SQLite's busy handler is not fair, though: each waiter sleeps up to 100 ms between
tries, and under a burst (the fault suite's 100 files, beside a benchmark) the lock passed from
one short holder to the next (0.06 s on average, 1 s at most) while unlucky transactions missed
it for up to 13 s, each holding a pooled connection meanwhile. So the server's transactions
also queue, in order of asking and one at a time per event loop (`write_turn`), before they
take a connection: in the same tests the longest wait for a turn was 1.1 s. Writes outside a
transaction (Prefect's event and task-run recorders) still wait in SQLite's busy handler: up
to 7 s there, and in some CI runs past its 60 s, when the event persister dropped events. A
transaction that waited for the lock or held it over `SLOW_LOCK_S`, or such a write that took
that long, is logged with its first statement: the server's log says what held the database.

    python -m bioprocessml.stack.prefect_server --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

log = logging.getLogger("prefect.server.database.write_lock")

SLOW_LOCK_S = float(os.environ.get("BIOPROCESSML_PREFECT_SLOW_LOCK_S", "5"))
TURN_TIMEOUT_S = 30.0  # then the transaction goes ahead and waits in SQLite's busy handler

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
_in_turn: ContextVar[bool] = ContextVar("bioprocessml_write_turn", default=False)


@asynccontextmanager
async def write_turn() -> AsyncIterator[None]:
    """This event loop's transactions one at a time, in order of asking (asyncio's lock is
    FIFO). Reentrant: a transaction opened inside one (or by a task it started) goes ahead,
    as it would have without the queue; after `TURN_TIMEOUT_S` a waiter goes ahead too, so
    the queue can delay a transaction but never deadlock it."""
    if _in_turn.get():
        yield
        return
    turn = _turns.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    asked = time.monotonic()
    try:
        async with asyncio.timeout(TURN_TIMEOUT_S):
            await turn.acquire()
        mine = True
    except TimeoutError:
        log.warning("no write turn after %.0f s: the transaction goes ahead", TURN_TIMEOUT_S)
        mine = False
    if (waited := time.monotonic() - asked) > SLOW_LOCK_S:
        log.warning("a transaction waited %.1f s for its write turn", waited)
    token = _in_turn.set(True)
    try:
        yield
    finally:
        _in_turn.reset(token)
        if mine:
            turn.release()


def immediate_sqlite_transactions() -> None:
    """Make every transaction of Prefect's SQLite configuration begin IMMEDIATE, in turn."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    original = AioSqliteConfiguration.begin_transaction
    if getattr(original, "immediate", False):
        return

    @asynccontextmanager
    async def begin_transaction(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AsyncIterator[Any]:
        async with write_turn(), original(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction.immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


WRITES = ("INSERT", "UPDATE", "DELETE")


def _asked(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    if statement.startswith("BEGIN IMMEDIATE"):
        conn.info["write_lock"] = {"asked": time.monotonic(), "first": None}
    elif (lock := conn.info.get("write_lock")) and lock["first"] is None:
        lock["first"] = _short(statement)
    elif not conn.info.get("write_lock") and statement[:16].lstrip().upper().startswith(WRITES):
        conn.info["autocommit_write"] = time.monotonic()


def _taken(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    now = time.monotonic()
    took = now - conn.info.pop("autocommit_write", now)
    if statement.startswith("BEGIN IMMEDIATE") and (lock := conn.info.get("write_lock")):
        lock["taken"] = now
    elif took > SLOW_LOCK_S:
        log.warning("SQLite write outside a transaction took %.1f s: %s", took, _short(statement))


def _short(statement: str) -> str:
    return " ".join(statement.split())[:300]


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
    write lock or held it for over `SLOW_LOCK_S` seconds, with its first statement, and every
    write outside a transaction that took that long; `on=False` stops it."""
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
