"""A write that fails half-way leaves nothing behind: no row, no link, no audit event.

A trigger the test creates makes the insert of a process-role link fail after the process
row and its department links were written in the same transaction. Its SQLSTATE says why:
a role deleted by someone else meanwhile (409), a full disk (503), or a failure nobody
foresaw (500); in every case the transaction rolls back whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, pool, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.domains.audit.models import AuditEvent
from app.domains.process.models import Process, process_departments
from tests.factories import Factory
from tests.reliability.conftest import assert_problem

URL = "/api/v1/processes"
FAILURES = [
    pytest.param("foreign_key_violation", 409, id="linked-role-deleted-meanwhile"),
    pytest.param("disk_full", 503, id="disk-full"),
    pytest.param("raise_exception", 500, id="unforeseen-failure"),
]

FailingLinks = Callable[[str], Any]


@pytest.fixture
def failing_role_links(database_url: str) -> Callable[[str], Any]:
    """`async with failing_role_links("disk_full"):` inserts into process_roles fail so."""

    @asynccontextmanager
    async def install(errcode: str) -> AsyncIterator[None]:
        engine = create_async_engine(database_url, poolclass=pool.NullPool)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "CREATE FUNCTION fail_role_link() RETURNS trigger LANGUAGE plpgsql AS "
                        f"$$ BEGIN RAISE EXCEPTION 'injected failure' USING ERRCODE = '{errcode}'; "
                        "END $$"
                    )
                )
                await connection.execute(
                    text(
                        "CREATE TRIGGER fail_role_link BEFORE INSERT ON process_roles "
                        "FOR EACH ROW EXECUTE FUNCTION fail_role_link()"
                    )
                )
            yield
        finally:
            async with engine.begin() as connection:
                await connection.execute(
                    text("DROP TRIGGER IF EXISTS fail_role_link ON process_roles")
                )
                await connection.execute(text("DROP FUNCTION IF EXISTS fail_role_link()"))
            await engine.dispose()

    return install


async def _audit_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.mark.parametrize(("errcode", "status"), FAILURES)
async def test_a_create_failing_half_way_writes_no_process_no_link_and_no_audit_event(
    client: AsyncClient,
    factory: Factory,
    admin_headers: dict[str, str],
    session: AsyncSession,
    failing_role_links: FailingLinks,
    errcode: str,
    status: int,
) -> None:
    department = await factory.department()
    role = await factory.role()
    audit_before = await _audit_count(session)
    body = {"title": "Half-way", "department_ids": [department.id], "role_ids": [role.id]}

    async with failing_role_links(errcode):
        response = await client.post(URL, headers=admin_headers, json=body)

    assert_problem(response, status)
    assert "injected failure" not in response.text
    assert await session.scalar(select(func.count()).select_from(Process)) == 0
    assert await session.scalar(select(func.count()).select_from(process_departments)) == 0
    assert await _audit_count(session) == audit_before


@pytest.mark.parametrize(("errcode", "status"), FAILURES)
async def test_an_update_failing_half_way_changes_nothing_and_records_no_audit_event(
    client: AsyncClient,
    factory: Factory,
    admin_headers: dict[str, str],
    session: AsyncSession,
    failing_role_links: FailingLinks,
    errcode: str,
    status: int,
) -> None:
    first, second = await factory.department(), await factory.department()
    role = await factory.role()
    created = await client.post(
        URL, headers=admin_headers, json={"title": "Before", "department_ids": [first.id]}
    )
    assert created.status_code == 201
    path = f"{URL}/{created.json()['id']}"
    audit_before = await _audit_count(session)
    change = {"title": "After", "department_ids": [second.id], "role_ids": [role.id]}

    async with failing_role_links(errcode):
        response = await client.patch(path, headers=admin_headers, json=change)

    assert_problem(response, status)
    after = await client.get(path, headers=admin_headers)
    assert after.json() == created.json()
    assert after.headers["etag"] == 'W/"1"'
    assert await _audit_count(session) == audit_before
