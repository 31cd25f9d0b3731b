"""Export, then import into a fresh database: the same data comes back."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.domains.exchange.schemas import ExportFormat
from app.models import Base
from tests.exchange.helpers import API, CSV, NDJSON, export, rows_of, send_import
from tests.factories import Factory

# In dependency order: what a row names is imported before it.
COLLECTIONS = ("roles", "departments", "locations", "resources", "processes")
# Set by the server, or by actions other than create and update: not restored.
NOT_RESTORED = {
    "created_at",
    "updated_at",
    "created_by_id",
    "version",
    "last_reviewed_at",
    "review_due_at",
}
PEOPLE = ("admin@example.com", "manager@example.com", "owner@example.com")


async def _people(factory: Factory) -> dict[str, Any]:
    users = {}
    for email in PEOPLE:
        users[email] = await factory.user(superuser=email == PEOPLE[0], email=email)
    return users


async def _organisation(
    client: AsyncClient, headers: dict[str, str], people: dict[str, Any]
) -> None:
    async def post(collection: str, **body: Any) -> int:
        response = await client.post(f"{API}/{collection}", headers=headers, json=body)
        assert response.status_code == 201, response.text
        created: int = response.json()["id"]
        return created

    manager = people["manager@example.com"].id
    ops = await post("departments", name="Operations", code="OPS", manager_id=manager)
    fleet = await post(
        "departments", name="Fleet", code="OPS-FL", parent_id=ops, description="Vans"
    )
    await post("departments", name="Unnamed", parent_id=fleet)
    site = await post(
        "locations",
        name="Campus",
        kind="site",
        timezone="Europe/Paris",
        address={
            "line1": "1 rue de la Paix",
            "city": "Paris",
            "postal_code": "75002",
            "country": "FR",
        },
    )
    floor = await post("locations", name="Floor 2", kind="floor", parent_id=site)
    van = await post(
        "resources",
        name="Van",
        kind="equipment",
        quantity=4,
        location_id=floor,
        department_id=fleet,
    )
    laptop = await post("resources", name="Laptop", kind="system", status="in_use")
    driver = await post("roles", name="Driver", permissions=["processes:read"])
    planner = await post("roles", name="Planner; senior", description="Plans", permissions=[])
    await post(
        "processes",
        title="Deliver, on time",
        description='Line one\nline "two"',
        status="active",
        criticality="critical",
        owner_id=people["owner@example.com"].id,
        review_interval_days=30,
        department_ids=[fleet, ops],
        location_ids=[floor],
        resource_ids=[van, laptop],
        role_ids=[driver, planner],
    )
    await post("processes", title="Plan routes")


async def _fresh_database(
    engine: AsyncEngine, redis: Redis, settings: Settings, factory: Factory
) -> None:
    factory.session.expunge_all()
    tables = ", ".join(f'"{table.name}"' for table in reversed(Base.metadata.sorted_tables))
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
    if keys:
        await redis.delete(*keys)


def _restorable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in NOT_RESTORED} for row in rows]


@pytest.mark.parametrize("file_format", list(ExportFormat))
async def test_an_export_imported_into_a_fresh_database_gives_the_same_data(
    client: AsyncClient,
    factory: Factory,
    engine: AsyncEngine,
    redis: Redis,
    settings: Settings,
    file_format: ExportFormat,
) -> None:
    people = await _people(factory)
    headers = factory.headers(people["admin@example.com"])
    await _organisation(client, headers, people)
    files = {
        collection: await export(client, headers, collection, format=file_format.value)
        for collection in COLLECTIONS
    }

    await _fresh_database(engine, redis, settings, factory)
    people = await _people(factory)  # the accounts of the new database: users are not imported
    headers = factory.headers(people["admin@example.com"])
    media_type = CSV if file_format is ExportFormat.CSV else NDJSON
    for collection, exported in files.items():
        imported = await send_import(
            client, headers, collection, exported.content, media_type=media_type
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["created"] == len(rows_of(exported))

    for collection, exported in files.items():
        again = await export(client, headers, collection, format=file_format.value)
        assert _restorable(rows_of(again)) == _restorable(rows_of(exported)), collection
        assert again.content != exported.content  # new timestamps and author: really rewritten
