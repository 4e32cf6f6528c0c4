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

    python -m bioprocessml.stack.prefect_server --host 127.0.0.1 --port 4200
"""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from typing import Any


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


def main() -> None:
    """Run `prefect server start ARGS` in this process with the change above."""
    from prefect.cli import app

    immediate_sqlite_transactions()
    sys.argv = ["prefect", "server", "start", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
