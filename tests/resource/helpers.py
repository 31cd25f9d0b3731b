"""Builders of the rows resources point at, committed so the API sees them."""

from __future__ import annotations

import itertools
from typing import Any

from httpx import AsyncClient
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.department.models import Department
from app.domains.location.models import Location, LocationKind
from app.domains.resource.models import Resource, ResourceKind

URL = "/api/v1/resources"
_sequence = itertools.count(1)


async def make_location(session: AsyncSession, *, name: str | None = None) -> Location:
    location = Location(
        name=name or f"Site {next(_sequence)}",
        kind=LocationKind.SITE,
        city="Lyon",
        country="FR",
        timezone="Europe/Paris",
    )
    session.add(location)
    await session.commit()
    return location


async def make_department(session: AsyncSession, *, name: str | None = None) -> Department:
    department = Department(name=name or f"Department {next(_sequence)}")
    session.add(department)
    await session.commit()
    return department


async def make_resources(
    session: AsyncSession,
    count: int,
    *,
    location: Location | None = None,
    department: Department | None = None,
    **values: Any,
) -> list[int]:
    """`count` resources in one statement; their ids in insertion order."""
    rows = [
        {
            "name": f"Resource {next(_sequence)}",
            "kind": ResourceKind.EQUIPMENT,
            "location_id": location.id if location else None,
            "department_id": department.id if department else None,
            **values,
        }
        for _ in range(count)
    ]
    ids = await session.scalars(
        insert(Resource).returning(Resource.id, sort_by_parameter_order=True), rows
    )
    result = list(ids)
    await session.commit()
    return result


async def create(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST a resource (equipment named "Forklift" unless told otherwise); its JSON."""
    response = await client.post(
        URL, json={"name": "Forklift", "kind": "equipment", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
