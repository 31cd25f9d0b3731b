"""The raw-limit fixture (locust/reference_app.py) answers the reference mix as Atlas does.

`locust/bench.py` measures Atlas against it, so it must do the same work: the same JSON
(byte for byte where nothing must differ), the same rows (process, links, audit event)
and the same refusals of unknown ids, with nothing written. Each request goes to Atlas
and to the fixture, in-process, on the test database.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import PROJECT_ROOT
from app.domains.user.models import User
from tests.factories import Factory

# After the installed packages: nothing the suite imports is shadowed by locust/'s scripts.
sys.path.append(str(PROJECT_ROOT / "locust"))
import reference_app

URL = "/api/v1/processes"
KINDS = {
    "department_ids": ("process_departments", "department_id"),
    "location_ids": ("process_locations", "location_id"),
    "resource_ids": ("process_resources", "resource_id"),
    "role_ids": ("process_roles", "role_id"),
}
# What differs between two processes written alike: their ids and when they were written.
WRITTEN = ("id", "created_at", "updated_at")


@pytest.fixture
async def writer(factory: Factory) -> User:
    return await factory.user(
        permissions=["processes:read", "processes:write"], full_name="Zoë Writer"
    )


@pytest.fixture
async def atlas(client: AsyncClient, factory: Factory, writer: User) -> AsyncClient:
    client.headers.update(factory.headers(writer))
    return client


@pytest.fixture
async def raw(database_url: str, writer: User) -> AsyncIterator[AsyncClient]:
    """The fixture's app on the test database, writing as `writer` (as Atlas's token does)."""
    app = reference_app.create_app(database_url, writer.email)
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://raw") as client,
    ):
        yield client


@pytest.fixture
async def links(factory: Factory) -> dict[str, list[int]]:
    """Ten targets of each kind (names with non-ASCII letters, as JSON must carry them)."""
    return {
        "department_ids": [(await factory.department(name=f"Dépt {n}")).id for n in range(10)],
        "location_ids": [(await factory.location()).id for _ in range(10)],
        "resource_ids": [(await factory.resource()).id for _ in range(10)],
        "role_ids": [(await factory.role()).id for _ in range(10)],
    }


def five_of_each(links: dict[str, list[int]], start: int = 0) -> dict[str, list[int]]:
    return {field: ids[start : start + 5] for field, ids in links.items()}


async def create_in_atlas(atlas: AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await atlas.post(URL, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def written_alike(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["created_at"] <= body["updated_at"]
    return {key: value for key, value in body.items() if key not in WRITTEN}


async def rows(engine: AsyncEngine, process_id: int) -> dict[str, Any]:
    """What a write left in the database for one process, less its id and timestamps."""
    async with engine.connect() as connection:
        process = (
            await connection.execute(
                text(
                    "SELECT title, description, status, criticality, owner_id,"
                    " review_interval_days, last_reviewed_at, version, created_by_id,"
                    " created_at = updated_at AS never_updated FROM processes WHERE id = :id"
                ),
                {"id": process_id},
            )
        ).one()
        found: dict[str, Any] = {"process": process._asdict()}
        for field, (table, column) in KINDS.items():
            result = await connection.execute(
                text(f"SELECT {column} FROM {table} WHERE process_id = :id ORDER BY 1"),  # noqa: S608
                {"id": process_id},
            )
            found[field] = list(result.scalars())
        events = await connection.execute(
            text(
                "SELECT actor_id, action, entity_type, changes, request_id IS NOT NULL AS tagged"
                " FROM audit_events WHERE entity_type = 'process' AND entity_id = :id ORDER BY id"
            ),
            {"id": process_id},
        )
        found["audit"] = [event._asdict() for event in events]
    return found


async def count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())  # noqa: S608


async def test_one_process_is_the_same_bytes(
    atlas: AsyncClient, raw: AsyncClient, factory: Factory, links: dict[str, list[int]]
) -> None:
    owner = await factory.user(full_name="Øystein Owner")
    created = await create_in_atlas(
        atlas,
        {
            "title": "Überprüfung ✓",
            "description": 'Quotes " and \\ and a tab\t',
            "owner_id": owner.id,
            "review_interval_days": 30,
            **five_of_each(links),
        },
    )
    bare = await create_in_atlas(atlas, {"title": "Nothing linked"})
    for process in (created, bare):
        ours = await atlas.get(f"{URL}/{process['id']}")
        theirs = await raw.get(f"{URL}/{process['id']}")
        assert theirs.status_code == ours.status_code == 200
        assert theirs.content == ours.content
        assert theirs.headers["etag"] == ours.headers["etag"]
    assert (await raw.get(f"{URL}/{bare['id'] + 1}")).status_code == 404


async def test_pages_are_the_same_bytes_cursors_included(
    atlas: AsyncClient, raw: AsyncClient, links: dict[str, list[int]]
) -> None:
    for number in range(5):
        await create_in_atlas(atlas, {"title": f"Process {number}", **five_of_each(links, number)})
    for path in (f"{URL}?limit=100", URL, f"{URL}?limit=2"):
        ours, theirs = await atlas.get(path), await raw.get(path)
        assert theirs.status_code == ours.status_code == 200
        assert theirs.content == ours.content
    # Walk both by their own cursors; each accepts the other's (they are the same string).
    cursor, walked = None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        ours, theirs = await atlas.get(URL, params=params), await raw.get(URL, params=params)
        assert theirs.content == ours.content
        walked += len(ours.json()["items"])
        cursor = ours.json()["next_cursor"]
        if cursor is None:
            break
    assert walked == 5
    for cursor in ("nonsense", "e30.AAAA"):
        assert (await raw.get(URL, params={"cursor": cursor})).status_code == 422
        assert (await atlas.get(URL, params={"cursor": cursor})).status_code == 422


async def test_create_with_five_links_of_each_kind_writes_the_same(
    atlas: AsyncClient, raw: AsyncClient, engine: AsyncEngine, links: dict[str, list[int]]
) -> None:
    body = {
        "title": "  Reference process 1 ",
        "description": "random_description",
        **five_of_each(links),
    }
    body["role_ids"] = [*body["role_ids"], body["role_ids"][0]]  # a repeat counts once
    ours, theirs = await atlas.post(URL, json=body), await raw.post(URL, json=body)
    assert theirs.status_code == ours.status_code == 201
    assert written_alike(theirs) == written_alike(ours)
    assert theirs.headers["etag"] == ours.headers["etag"] == 'W/"1"'
    assert theirs.headers["location"] == f"{URL}/{theirs.json()['id']}"
    written = await rows(engine, theirs.json()["id"])
    assert written == await rows(engine, ours.json()["id"])
    assert written["audit"][0]["action"] == "create"
    assert written["audit"][0]["changes"]["role_ids"] == {
        "added": sorted(links["role_ids"][:5]),
        "removed": [],
    }


async def test_patch_replacing_links_writes_the_same(
    atlas: AsyncClient, raw: AsyncClient, engine: AsyncEngine, links: dict[str, list[int]]
) -> None:
    first = await create_in_atlas(atlas, {"title": "Twin", **five_of_each(links)})
    second = await create_in_atlas(atlas, {"title": "Twin", **five_of_each(links)})
    body = {"title": "updated_title", "status": "active", **five_of_each(links, 3)}
    ours = await atlas.patch(f"{URL}/{first['id']}", json=body)
    theirs = await raw.patch(f"{URL}/{second['id']}", json=body)
    assert theirs.status_code == ours.status_code == 200
    assert written_alike(theirs) == written_alike(ours)
    assert theirs.headers["etag"] == ours.headers["etag"] == 'W/"2"'
    written = await rows(engine, second["id"])
    assert written == await rows(engine, first["id"])
    assert not written["process"]["never_updated"]
    assert written["audit"][1]["changes"]["title"] == ["Twin", "updated_title"]
    # The same body again changes nothing: no new version, no audit event, on either side.
    await atlas.patch(f"{URL}/{first['id']}", json=body)
    again = await raw.patch(f"{URL}/{second['id']}", json=body)
    assert again.headers["etag"] == 'W/"2"'
    assert await rows(engine, second["id"]) == written == await rows(engine, first["id"])
    # Links alone are a new version too.
    ours = await atlas.patch(f"{URL}/{first['id']}", json={"role_ids": []})
    theirs = await raw.patch(f"{URL}/{second['id']}", json={"role_ids": []})
    assert written_alike(theirs) == written_alike(ours)
    assert await rows(engine, second["id"]) == await rows(engine, first["id"])


async def test_unknown_ids_are_refused_and_nothing_is_written(
    atlas: AsyncClient, raw: AsyncClient, engine: AsyncEngine, links: dict[str, list[int]]
) -> None:
    unknown = {**five_of_each(links), "role_ids": [links["role_ids"][0], 10**12]}
    response = await raw.post(URL, json={"title": "Half", **unknown})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert str(10**12) in response.json()["detail"]
    for table in ("processes", "process_departments", "audit_events"):
        assert await count(engine, table) == 0
    process = await create_in_atlas(atlas, {"title": "Kept", **five_of_each(links)})
    before = await rows(engine, process["id"])
    response = await raw.patch(f"{URL}/{process['id']}", json={"title": "Half", **unknown})
    assert response.status_code == 422
    assert await rows(engine, process["id"]) == before
    response = await raw.patch(f"{URL}/{process['id']}", json={"owner_id": 10**12})
    assert response.status_code == 422
    assert (await raw.patch(f"{URL}/{process['id'] + 1}", json={"title": "x"})).status_code == 404
    assert (await raw.post(URL, json={"title": "x", "colour": "red"})).status_code == 422
