"""Two imports of one collection never interleave: the second waits, then sees the first."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domains.department.models import Department
from tests.exchange.helpers import send_import
from tests.factories import Factory

WAITING_ON_ADVISORY_LOCKS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
)


async def _until_waiting(engine: AsyncEngine, count: int) -> None:
    """Poll until `count` transactions wait on an advisory lock (fails after 20 s)."""
    for _ in range(400):
        async with engine.connect() as connection:
            if await connection.scalar(WAITING_ON_ADVISORY_LOCKS) == count:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} imports never waited for the import lock")


async def test_concurrent_imports_of_a_collection_run_one_after_the_other(
    client: AsyncClient, factory: Factory, engine: AsyncEngine, session: AsyncSession
) -> None:
    headers = factory.headers(await factory.user(superuser=True))
    body = "name,code,description\nOperations,OPS,Runs things\n"

    async with engine.connect() as holder:
        # Another import of departments holds the lock.
        await holder.execute(
            select(func.pg_advisory_xact_lock(func.hashtext("import:departments")))
        )
        first = asyncio.create_task(send_import(client, headers, "departments", body))
        second = asyncio.create_task(send_import(client, headers, "departments", body))
        await _until_waiting(engine, 2)
        dry_run = await send_import(client, headers, "departments", body, dry_run=True)
        other = await send_import(client, headers, "roles", "name\nClerk\n")
        await holder.commit()
    answers = await asyncio.gather(first, second)

    assert dry_run.json()["created"] == 1  # a dry run writes nothing: it does not wait
    assert other.json()["created"] == 1  # nor does an import of another collection
    assert [answer.status_code for answer in answers] == [200, 200]
    reports = sorted((a.json()["created"], a.json()["unchanged"]) for a in answers)
    assert reports == [(0, 1), (1, 0)]  # the second matched the first's row by its code
    assert await session.scalar(select(func.count()).select_from(Department)) == 1
