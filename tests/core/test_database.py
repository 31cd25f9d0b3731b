"""The engine's pool: idle connections are checked before use, busy ones are not."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core import database
from app.core.config import Settings


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        pid: int = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return pid


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the pings sent on checkout."""
    calls: list[int] = []
    original = AsyncAdapt_asyncpg_connection.ping

    def counting_ping(self: Any) -> None:
        calls.append(1)
        original(self)

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counting_ping)
    return calls


async def test_a_connection_used_moments_ago_is_not_pinged(
    settings: Settings, pings: list[int]
) -> None:
    engine = database.create_engine(settings.model_copy(update={"db_pool_size": 1}))
    try:
        first = await _backend_pid(engine)
        assert await _backend_pid(engine) == first
        assert pings == []
    finally:
        await engine.dispose()


async def test_an_idle_connection_killed_by_the_server_is_replaced_unseen(
    settings: Settings, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = database.create_engine(settings.model_copy(update={"db_pool_size": 1}))
    killer = database.create_engine(settings)
    try:
        first = await _backend_pid(engine)
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
        assert await _backend_pid(engine) != first
        assert pings == [1]
    finally:
        await killer.dispose()
        await engine.dispose()


async def test_without_pre_ping_nothing_is_pinged(
    settings: Settings, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = database.create_engine(settings.model_copy(update={"db_pool_pre_ping": False}))
    monkeypatch.setattr(database, "PING_AFTER_IDLE_SECONDS", 0.0)
    try:
        await _backend_pid(engine)
        await _backend_pid(engine)
        assert pings == []
    finally:
        await engine.dispose()


async def test_sessions_run_without_parallel_workers_by_default(
    engine: AsyncEngine,
) -> None:
    """A small LIMIT query must not wait for parallel workers to start (DB_PARALLEL_WORKERS)."""
    async with engine.connect() as connection:
        value = await connection.scalar(text("SHOW max_parallel_workers_per_gather"))
    assert value == "0"
