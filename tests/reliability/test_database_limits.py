"""A saturated pool and a slow statement end in a 503 after a bounded wait, never a hang.

A test connection takes an exclusive lock on `departments`, so a request reading them
blocks on PostgreSQL for as long as the test decides: deterministic, no sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tests.reliability.conftest import SettingsFactory, assert_problem, serve

DEPARTMENTS = "/api/v1/departments"
WAIT_ATTEMPTS = 200  # polls of 0.05 s


@pytest.fixture
async def lock_holder(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection of the test's own; whatever lock it takes is released at the end."""
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            yield connection
            await connection.rollback()
    finally:
        await engine.dispose()


async def _lock_departments(connection: AsyncConnection) -> None:
    await connection.execute(text("LOCK TABLE departments IN ACCESS EXCLUSIVE MODE"))


async def _wait_until_a_request_waits_for_the_lock(connection: AsyncConnection) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'departments'::regclass"
    )
    for _ in range(WAIT_ATTEMPTS):
        if await connection.scalar(waiting):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no request ever waited for the lock on departments")


async def test_a_full_pool_answers_503_after_pool_timeout_not_a_hang(
    settings_with: SettingsFactory, admin_headers: dict[str, str], lock_holder: AsyncConnection
) -> None:
    settings = settings_with(
        db_pool_size=1, db_max_overflow=0, db_pool_timeout=0.5, db_statement_timeout_ms=0
    )
    async with serve(settings) as client:
        # Warm the token cache: the second request then needs the pool only for its query.
        assert (await client.get("/api/v1/permissions", headers=admin_headers)).status_code == 200
        await _lock_departments(lock_holder)
        holding = asyncio.create_task(client.get(DEPARTMENTS, headers=admin_headers))
        await _wait_until_a_request_waits_for_the_lock(lock_holder)

        starved = await asyncio.wait_for(client.get("/api/v1/roles", headers=admin_headers), 30)

        assert_problem(starved, 503)
        assert starved.headers["retry-after"] == "1"
        assert starved.json()["detail"] == "The service is saturated; retry shortly."
        await lock_holder.rollback()
        assert (await asyncio.wait_for(holding, 30)).status_code == 200
        assert (await client.get("/api/v1/roles", headers=admin_headers)).status_code == 200


async def test_a_statement_past_the_timeout_is_cancelled_and_answers_503(
    settings_with: SettingsFactory, admin_headers: dict[str, str], lock_holder: AsyncConnection
) -> None:
    settings = settings_with(db_statement_timeout_ms=300)
    async with serve(settings) as client:
        await _lock_departments(lock_holder)

        slow = await asyncio.wait_for(client.get(DEPARTMENTS, headers=admin_headers), 30)

        assert_problem(slow, 503)
        assert slow.json()["detail"] == "The database took too long to answer."
        blocked = await lock_holder.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
        assert blocked == 0, "the cancelled statement still waits in PostgreSQL"
        await lock_holder.rollback()
        assert (await client.get(DEPARTMENTS, headers=admin_headers)).status_code == 200
