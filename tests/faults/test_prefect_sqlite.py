"""The Prefect server's SQLite under a concurrent commit: a read-then-write transaction of the
stock configuration fails at once ("database is locked": the API answers 503 and its clients
sleep 2 s or more), the stack's server (bioprocessml.stack.prefect_server) waits for the lock,
its transactions take turns in order of asking, and a long wait or hold is logged."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy.ext.asyncio import AsyncSession

from bioprocessml.stack import prefect_server
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


async def hold_a_write_lock(path: Path, seconds: float) -> None:
    """One IMMEDIATE transaction (as the stack's server begins them) that inserts, then holds
    the lock `seconds` before committing, and a short one after it; then a write outside a
    transaction that waits `seconds` for another connection's lock."""
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}", timeout=10)
    engine = await config.engine()
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        for hold in (seconds, 0.0):
            session = AsyncSession(engine)
            async with config.begin_transaction(session, with_for_update=True):
                await session.execute(sa.text("INSERT INTO t VALUES (1)"))
                await asyncio.sleep(hold)
            await session.close()
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        threading.Timer(seconds, other.execute, ["COMMIT"]).start()
        async with engine.connect() as conn:  # no BEGIN: a write outside a transaction
            await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
        other.close()
    finally:
        await engine.dispose()


def test_a_long_held_lock_and_a_slow_write_are_logged_with_their_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(prefect_server, "SLOW_LOCK_S", 0.2)
    prefect_server.log_slow_write_locks()
    try:
        with caplog.at_level(logging.WARNING, logger=prefect_server.log.name):
            asyncio.run(hold_a_write_lock(tmp_path / "held.db", 1.0))
    finally:
        prefect_server.log_slow_write_locks(on=False)
    slow = [r.getMessage() for r in caplog.records if r.name == prefect_server.log.name]
    assert len(slow) == 2, slow  # the short transaction after it is not logged
    assert "then held" in slow[0] and "INSERT INTO t VALUES (1)" in slow[0]
    assert "outside a transaction took" in slow[1] and "INSERT INTO t VALUES (2)" in slow[1]


async def many_writers(path: Path, n: int) -> tuple[list[int], int, int]:
    """`n` tasks ask for a read-then-write transaction at once: returns the order they got in,
    the most that were inside at the same time, and the rows at the end."""
    config = AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}", timeout=10)
    engine = await config.engine()
    order: list[int] = []
    inside = most = 0

    async def writer(i: int) -> None:
        nonlocal inside, most
        session = AsyncSession(engine)
        async with config.begin_transaction(session):
            inside += 1
            most = max(most, inside)
            order.append(i)
            await session.execute(sa.text("SELECT count(*) FROM t"))
            await asyncio.sleep(0.01)
            await session.execute(sa.text("INSERT INTO t VALUES (:i)"), {"i": i})
            inside -= 1
        await session.close()

    async def asking_in_order() -> None:
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(writer(i)))
            await asyncio.sleep(0)  # task i asks before task i + 1
        await asyncio.gather(*tasks)

    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        await asking_in_order()
        async with engine.connect() as conn:
            rows = int((await conn.execute(sa.text("SELECT count(*) FROM t"))).scalar_one())
        return order, most, rows
    finally:
        await engine.dispose()


def test_transactions_take_turns_in_order_of_asking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        AioSqliteConfiguration, "begin_transaction", AioSqliteConfiguration.begin_transaction
    )
    immediate_sqlite_transactions()
    order, most, rows = asyncio.run(many_writers(tmp_path / "turns.db", 30))
    assert (order, most, rows) == (list(range(30)), 1, 30)
