"""GET /resources: filters, sorting, keyset pages and a constant number of queries."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.resource.models import ResourceKind, ResourceStatus
from tests.factories import Factory
from tests.resource.helpers import URL, make_department, make_location, make_resources


@pytest.fixture
async def reader(factory: Factory) -> dict[str, str]:
    return factory.headers(await factory.user(permissions=["resources:read"]))


async def _names(client: AsyncClient, headers: dict[str, str], **params: Any) -> list[str]:
    response = await client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def test_q_matches_name_or_description_ignoring_case(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str]
) -> None:
    await make_resources(session, 1, name="Forklift 50%")
    await make_resources(session, 1, name="Crane", description="Lifts FORKLIFT pallets")
    await make_resources(session, 1, name="Printer")
    assert await _names(client, reader, q="forklift") == ["Forklift 50%", "Crane"]
    assert await _names(client, reader, q="50%") == ["Forklift 50%"]
    assert await _names(client, reader, q="_") == []


async def test_filters_by_kind_status_and_references(
    client: AsyncClient, session: AsyncSession, factory: Factory, reader: dict[str, str]
) -> None:
    site = await make_location(session)
    owner = await make_department(session)
    author = await factory.user()
    await make_resources(session, 1, name="ERP", kind=ResourceKind.SYSTEM)
    await make_resources(session, 1, name="Crane", status=ResourceStatus.MAINTENANCE, location=site)
    await make_resources(session, 1, name="Manual", kind=ResourceKind.DOCUMENT, department=owner)
    await make_resources(session, 1, name="Pallets", created_by_id=author.id)
    assert await _names(client, reader, kind="system") == ["ERP"]
    assert await _names(client, reader, status="maintenance") == ["Crane"]
    assert await _names(client, reader, location_id=site.id) == ["Crane"]
    assert await _names(client, reader, department_id=owner.id) == ["Manual"]
    assert await _names(client, reader, created_by_id=author.id) == ["Pallets"]
    assert await _names(client, reader, kind="document", department_id=owner.id) == ["Manual"]
    assert await _names(client, reader, kind="system", status="retired") == []


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "spaceship"},
        {"status": "lost"},
        {"location_id": "zero"},
        {"department_id": 0},
        {"sort": "colour"},
        {"sort": "description"},
        {"cursor": "not-a-cursor"},
        {"limit": 0},
        {"limit": 201},
    ],
)
async def test_bad_list_parameters_answer_422(
    client: AsyncClient, reader: dict[str, str], params: dict[str, object]
) -> None:
    response = await client.get(URL, params=params, headers=reader)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_default_order_is_by_id(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str]
) -> None:
    ids = await make_resources(session, 3)
    response = await client.get(URL, headers=reader)
    assert [item["id"] for item in response.json()["items"]] == ids
    assert response.json()["next_cursor"] is None
    assert "total" not in response.json()


async def test_sorts_by_whitelisted_fields_with_id_as_tie_break(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str]
) -> None:
    await make_resources(session, 1, name="b", quantity=5)
    await make_resources(session, 1, name="a", quantity=5)
    await make_resources(session, 1, name="c", quantity=1)
    assert await _names(client, reader, sort="name") == ["a", "b", "c"]
    assert await _names(client, reader, sort="-name") == ["c", "b", "a"]
    assert await _names(client, reader, sort="quantity") == ["c", "b", "a"]
    assert await _names(client, reader, sort="-quantity,name") == ["a", "b", "c"]
    assert await _names(client, reader, sort="-quantity") == ["a", "b", "c"]  # -id breaks ties
    assert await _names(client, reader, sort="created_at") == ["b", "a", "c"]
    assert await _names(client, reader, sort="-updated_at") == ["c", "a", "b"]


async def test_include_total_counts_every_filtered_row(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str]
) -> None:
    await make_resources(session, 7, kind=ResourceKind.MATERIAL)
    await make_resources(session, 2, kind=ResourceKind.SYSTEM)
    response = await client.get(
        URL, params={"kind": "material", "limit": 3, "include_total": True}, headers=reader
    )
    assert response.json()["total"] == 7
    assert len(response.json()["items"]) == 3


@pytest.mark.parametrize("sort", [None, "name", "-quantity,name", "-created_at"])
async def test_walking_pages_while_rows_are_inserted_sees_each_row_once(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str], sort: str | None
) -> None:
    existing = set()
    for quantity in range(5):  # repeated names and quantities: the id tie-break matters
        existing.update(await make_resources(session, 5, name=f"Crate {quantity % 2}"))
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 4, **({"sort": sort} if sort else {})}
    while True:
        page = (await client.get(URL, params=params, headers=reader)).json()
        seen.extend(item["id"] for item in page["items"])
        await make_resources(session, 2, name="Crate 0", quantity=0)
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)


async def test_a_cursor_from_another_sort_answers_422(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str]
) -> None:
    await make_resources(session, 3)
    cursor = (await client.get(URL, params={"limit": 1}, headers=reader)).json()["next_cursor"]
    response = await client.get(URL, params={"cursor": cursor, "sort": "name"}, headers=reader)
    assert response.status_code == 422


async def _statements_for_a_page(client: AsyncClient, headers: dict[str, str]) -> int:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        response = await client.get(URL, params={"limit": 50}, headers=headers)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert response.status_code == 200
    assert all(item["location"] and item["department"] for item in response.json()["items"])
    return len(statements)


async def test_a_page_loads_in_a_constant_number_of_queries(
    client: AsyncClient, session: AsyncSession, reader: dict[str, str]
) -> None:
    sites = [await make_location(session) for _ in range(5)]
    owners = [await make_department(session) for _ in range(5)]
    for site, owner in zip(sites, owners, strict=True):
        await make_resources(session, 1, location=site, department=owner)
    assert (await client.get(URL, headers=reader)).status_code == 200  # token state cached
    for_five = await _statements_for_a_page(client, reader)

    for _ in range(45):
        site, owner = await make_location(session), await make_department(session)
        await make_resources(session, 1, location=site, department=owner)
    for_fifty = await _statements_for_a_page(client, reader)
    assert for_fifty == for_five
    assert for_five <= 3  # the page, its locations, its departments
