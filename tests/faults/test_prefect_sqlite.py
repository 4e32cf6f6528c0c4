"""The Prefect server's SQLite under a concurrent commit: a read-then-write transaction of the
stock configuration fails at once ("database is locked": the API answers 503 and its clients
sleep 2 s or more), the stack's server (bioprocessml.stack.prefect_server) waits for the lock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession

from bioprocessml.stack.prefect_server import immediate_sqlite_transactions


async def read_then_write_beside_a_commit(path: Path) -> int:
    """Transaction A reads, B commits a row meanwhile, then A writes: returns the rows at the end
    (2 when both went through); raises what SQLite raised."""
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}", timeout=10)
    engine = await config.engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))

        async def other_writer() -> None:
            async with engine.connect() as conn:  # autocommit: its own short write
                await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
                await conn.commit()

        session = AsyncSession(engine)
        async with config.begin_transaction(session):
            await session.execute(sa.text("SELECT count(*) FROM t"))
            other = asyncio.create_task(other_writer())
            await asyncio.sleep(0.3)  # B commits now, unless A holds the write lock
            await session.execute(sa.text("INSERT INTO t VALUES (1)"))
        await other
        await session.close()
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text("SELECT count(*) FROM t"))).scalar_one())
    finally:
        await engine.dispose()


def test_stock_sqlite_transaction_fails_on_a_concurrent_commit(tmp_path: Path) -> None:
    """Why the stack patches the server: if Prefect fixes this upstream, this test fails and the
    patch can go."""
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        asyncio.run(read_then_write_beside_a_commit(tmp_path / "stock.db"))


def test_immediate_transactions_wait_for_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(  # restored after the test: the patch is for the server's process
        AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction
    )
    immediate_sqlite_transactions()
    immediate_sqlite_transactions()  # twice is once
    assert asyncio.run(read_then_write_beside_a_commit(tmp_path / "patched.db")) == 2
