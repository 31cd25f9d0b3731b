"""The list's two statements: what a concurrent delete between them does to a page."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.pagination import PageParams
from app.domains.process import queries as process_queries
from app.domains.process.models import Process
from app.domains.process.schemas import ProcessFilters
from tests.factories import Factory


async def test_a_process_deleted_between_the_two_statements_leaves_the_page(
    client: AsyncClient,
    factory: Factory,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    writer = await factory.user(superuser=True)
    headers = factory.headers(writer)
    created = []
    for title in ("A", "B", "C"):
        response = await client.post("/api/v1/processes", headers=headers, json={"title": title})
        created.append(response.json()["id"])

    async with sessionmaker() as reader:
        execute = reader.execute

        async def execute_then_delete(*args: Any, **kwargs: Any) -> Any:
            result = await execute(*args, **kwargs)
            if reader.execute is execute_then_delete:  # only after the first statement
                reader.execute = execute  # type: ignore[method-assign]
                async with sessionmaker() as other, other.begin():
                    await other.execute(delete(Process).where(Process.id == created[1]))
            return result

        reader.execute = execute_then_delete  # type: ignore[method-assign]
        page = await process_queries.list(
            reader, filters=ProcessFilters(), page=PageParams(10, None, None, False)
        )
    assert [row.id for row in page.items] == [created[0], created[2]]
    assert all(row.title in {"A", "C"} for row in page.items)
