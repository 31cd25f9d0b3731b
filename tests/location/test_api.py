"""Locations through HTTP: kinds, addresses, time zones, the tree, ETags, deletion, audit."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.location.countries import COUNTRY_CODES
from app.domains.process.models import Process, process_locations
from app.domains.resource.models import Resource, ResourceKind
from app.domains.user.models import User
from tests.factories import Factory

URL = "/api/v1/locations"
_names = itertools.count(1)
NO_ADDRESS = {"line1": None, "city": None, "postal_code": None, "country": None}


@pytest.fixture
async def writer(factory: Factory) -> User:
    return await factory.user(permissions=["locations:read", "locations:write"])


@pytest.fixture
async def headers(factory: Factory, writer: User) -> dict[str, str]:
    return factory.headers(writer)


async def _create(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"Location {next(_names)}")
    body.setdefault("kind", "site")
    response = await client.post(URL, headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _patch(
    client: AsyncClient, headers: dict[str, str], location_id: int, **body: Any
) -> Response:
    return await client.patch(f"{URL}/{location_id}", headers=headers, json=body)


def _ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


# --- who may call -----------------------------------------------------------------


async def test_listing_without_a_token_answers_401(client: AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    assert (await client.post(URL, json={"name": "HQ", "kind": "site"})).status_code == 401


async def test_reading_without_the_permission_answers_403(
    client: AsyncClient, factory: Factory
) -> None:
    outsider = await factory.user(permissions=["departments:read"])
    assert (await client.get(URL, headers=factory.headers(outsider))).status_code == 403


async def test_writing_without_the_permission_answers_403(
    client: AsyncClient, factory: Factory
) -> None:
    reader = await factory.user(permissions=["locations:read"])
    location = await factory.location()
    reader_headers = factory.headers(reader)
    response = await client.post(URL, headers=reader_headers, json={"name": "x", "kind": "site"})
    assert response.status_code == 403
    assert (await _patch(client, reader_headers, location.id, name="y")).status_code == 403
    response = await client.delete(f"{URL}/{location.id}", headers=reader_headers)
    assert response.status_code == 403
    assert (await client.get(URL, headers=reader_headers)).status_code == 200


# --- create and read ----------------------------------------------------------------


async def test_create_answers_201_with_location_and_etag(
    client: AsyncClient, headers: dict[str, str], writer: User
) -> None:
    response = await client.post(
        URL,
        headers=headers,
        json={
            "name": " Paris HQ ",
            "kind": "building",
            "address": {
                "line1": "1 rue de Rivoli",
                "city": "Paris",
                "postal_code": "75001",
                "country": "fr",
            },
            "timezone": "europe/paris",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{URL}/{body['id']}"
    assert response.headers["etag"] == 'W/"1"'
    assert body["name"] == "Paris HQ"
    assert body["kind"] == "building"
    assert body["address"] == {
        "line1": "1 rue de Rivoli",
        "city": "Paris",
        "postal_code": "75001",
        "country": "FR",
    }
    assert body["timezone"] == "Europe/Paris"
    assert body["parent_id"] is None
    assert body["created_by_id"] == writer.id
    assert body["version"] == 1


async def test_create_defaults_to_utc_and_no_address(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, kind="virtual")
    assert created["timezone"] == "UTC"
    assert created["address"] == NO_ADDRESS


async def test_read_answers_the_location_with_its_etag(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, address={"city": "Oslo", "country": "NO"})
    response = await client.get(f"{URL}/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.json() == created


async def test_unknown_location_answers_404(client: AsyncClient, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", f"{URL}/999999"),
        ("GET", f"{URL}/999999/tree"),
        ("PATCH", f"{URL}/999999"),
        ("DELETE", f"{URL}/999999"),
    ]:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == "Location 999999 does not exist."


def test_the_country_list_is_iso_3166_1() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"FR", "DE", "US", "GB", "JP", "SS", "BQ", "AQ"} <= COUNTRY_CODES
    assert not {"UK", "XK", "EU", "ZZ"} & COUNTRY_CODES


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "x", "kind": "castle"},
        {"name": "", "kind": "site"},
        {"name": "x" * 201, "kind": "site"},
        {"name": "x", "kind": "site", "timezone": "Mars/Olympus_Mons"},
        {"name": "x", "kind": "site", "timezone": "localtime"},
        {"name": "x", "kind": "site", "timezone": None},
        {"name": "x", "kind": "site", "address": {"country": "XX"}},
        {"name": "x", "kind": "site", "address": {"country": "UK"}},
        {"name": "x", "kind": "site", "address": {"country": "FRA"}},
        {"name": "x", "kind": "site", "address": {"postal_code": "9" * 21}},
        {"name": "x", "kind": "site", "address": {"line1": "l" * 301}},
        {"name": "x", "kind": "site", "address": {"city": "c" * 121}},
        {"name": "x", "kind": "site", "address": {"street": "Main St"}},
        {"name": "x", "kind": "site", "address_line1": "flat fields are not the API"},
        {"name": "x", "kind": "site", "parent_id": 0},
    ],
)
async def test_invalid_bodies_answer_422(
    client: AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(URL, headers=headers, json=body)
    assert response.status_code == 422, response.text


async def test_unknown_parent_answers_422(client: AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(
        URL, headers=headers, json={"name": "Lost", "kind": "room", "parent_id": 424242}
    )
    assert response.status_code == 422
    assert "424242" in response.json()["detail"]


# --- update and versions ------------------------------------------------------------


async def test_patch_changes_only_the_address_parts_sent(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(
        client,
        headers,
        address={"line1": "Main St 1", "city": "Berlin", "postal_code": "10115", "country": "DE"},
        timezone="Europe/Berlin",
    )
    response = await _patch(
        client, headers, created["id"], name="Munich office", address={"city": "Munich"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Munich office"
    assert body["address"] == {
        "line1": "Main St 1",
        "city": "Munich",
        "postal_code": "10115",
        "country": "DE",
    }
    assert body["timezone"] == "Europe/Berlin"
    assert body["kind"] == "site"
    assert body["version"] == 2
    assert body["updated_at"] > created["updated_at"]
    assert response.headers["etag"] == 'W/"2"'

    response = await _patch(client, headers, created["id"], address={"postal_code": None})
    assert response.json()["address"]["postal_code"] is None
    assert response.json()["address"]["city"] == "Munich"
    response = await _patch(client, headers, created["id"], address=None)
    assert response.json()["address"] == NO_ADDRESS


async def test_patch_changes_kind_and_timezone(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    response = await _patch(
        client, headers, created["id"], kind="floor", timezone="America/New_York"
    )
    assert response.status_code == 200
    assert response.json()["kind"] == "floor"
    assert response.json()["timezone"] == "America/New_York"


@pytest.mark.parametrize("field", ["name", "kind", "timezone"])
async def test_patch_with_null_required_field_answers_422(
    client: AsyncClient, headers: dict[str, str], field: str
) -> None:
    created = await _create(client, headers)
    response = await _patch(client, headers, created["id"], **{field: None})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


async def test_patch_that_changes_nothing_keeps_the_version(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, address={"country": "JP"})
    response = await _patch(client, headers, created["id"], address={"country": "jp"})
    assert response.status_code == 200
    assert response.json()["version"] == 1


async def test_patch_with_stale_etag_answers_412(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    fresh = await client.patch(path, headers={**headers, "If-Match": 'W/"1"'}, json={"name": "A"})
    assert fresh.status_code == 200
    stale = await client.patch(path, headers={**headers, "If-Match": 'W/"1"'}, json={"name": "B"})
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"2"'
    assert (await client.get(path, headers=headers)).json()["name"] == "A"


async def test_patch_without_if_match_last_write_wins(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    await _patch(client, headers, created["id"], name="First")
    response = await _patch(client, headers, created["id"], name="Second")
    assert response.json()["name"] == "Second"
    assert response.json()["version"] == 3


# --- hierarchy ----------------------------------------------------------------------


async def test_moving_under_itself_or_a_descendant_answers_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    site = await _create(client, headers)
    building = await _create(client, headers, kind="building", parent_id=site["id"])
    room = await _create(client, headers, kind="room", parent_id=building["id"])
    assert (await _patch(client, headers, site["id"], parent_id=site["id"])).status_code == 422
    response = await _patch(client, headers, site["id"], parent_id=room["id"])
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"]
    moved = await _patch(client, headers, room["id"], parent_id=site["id"])
    assert moved.json()["parent_id"] == site["id"]


async def test_concurrent_moves_never_close_a_loop(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    # a > d and c > b: "a under b" and "c under d" are each fine alone, a loop together.
    for _ in range(5):
        a = await _create(client, headers)
        d = await _create(client, headers, parent_id=a["id"])
        c = await _create(client, headers)
        b = await _create(client, headers, parent_id=c["id"])
        responses = await asyncio.gather(
            _patch(client, headers, a["id"], parent_id=b["id"]),
            _patch(client, headers, c["id"], parent_id=d["id"]),
        )
        assert sorted(response.status_code for response in responses) == [200, 422]


async def test_tree_nests_every_descendant(client: AsyncClient, headers: dict[str, str]) -> None:
    site = await _create(client, headers, name="Campus")
    north = await _create(client, headers, name="North", kind="building", parent_id=site["id"])
    south = await _create(client, headers, name="South", kind="building", parent_id=site["id"])
    floor = await _create(client, headers, name="Level 1", kind="floor", parent_id=north["id"])
    await _create(client, headers, name="Elsewhere")

    response = await client.get(f"{URL}/{site['id']}/tree", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": site["id"],
        "name": "Campus",
        "kind": "site",
        "parent_id": None,
        "children": [
            {
                "id": north["id"],
                "name": "North",
                "kind": "building",
                "parent_id": site["id"],
                "children": [
                    {
                        "id": floor["id"],
                        "name": "Level 1",
                        "kind": "floor",
                        "parent_id": north["id"],
                        "children": [],
                    }
                ],
            },
            {
                "id": south["id"],
                "name": "South",
                "kind": "building",
                "parent_id": site["id"],
                "children": [],
            },
        ],
    }


# --- delete -------------------------------------------------------------------------


async def test_delete_answers_204_then_404(client: AsyncClient, headers: dict[str, str]) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    assert (await client.delete(path, headers=headers)).status_code == 204
    assert (await client.get(path, headers=headers)).status_code == 404


async def test_delete_with_stale_etag_answers_412(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    await _patch(client, headers, created["id"], name="Renamed")
    response = await client.delete(path, headers={**headers, "If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert (await client.delete(path, headers={**headers, "If-Match": "*"})).status_code == 204


async def test_delete_with_children_answers_409_naming_them(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    site = await _create(client, headers)
    await _create(client, headers, kind="building", parent_id=site["id"])
    response = await client.delete(f"{URL}/{site['id']}", headers=headers)
    assert response.status_code == 409
    assert "1 child locations" in response.json()["detail"]
    assert response.json()["blocked_by"] == {"child locations": 1}


async def test_delete_with_users_or_resources_answers_409_naming_them(
    client: AsyncClient, factory: Factory, session: AsyncSession, headers: dict[str, str]
) -> None:
    location = await factory.location()
    for _ in range(2):
        (await factory.user()).location_id = location.id
    session.add(Resource(name="Forklift", kind=ResourceKind.EQUIPMENT, location_id=location.id))
    await session.commit()
    response = await client.delete(f"{URL}/{location.id}", headers=headers)
    assert response.status_code == 409
    assert response.json()["blocked_by"] == {"users": 2, "resources": 1}
    assert "2 users, 1 resources" in response.json()["detail"]


async def test_delete_takes_the_process_links_with_it(
    client: AsyncClient, factory: Factory, session: AsyncSession, headers: dict[str, str]
) -> None:
    location = await factory.location()
    process = Process(title="Stocktake")
    session.add(process)
    await session.flush()
    await session.execute(
        insert(process_locations).values(process_id=process.id, location_id=location.id)
    )
    await session.commit()
    assert (await client.delete(f"{URL}/{location.id}", headers=headers)).status_code == 204
    assert await session.scalar(select(func.count()).select_from(process_locations)) == 0
    assert await session.scalar(select(func.count()).select_from(Process)) == 1


# --- lists --------------------------------------------------------------------------


async def test_list_filters(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    paris = await _create(
        client, headers, name="Paris HQ", address={"city": "Paris", "country": "FR"}
    )
    room = await _create(client, headers, name="Board room", kind="room", parent_id=paris["id"])
    lyon = await _create(
        client, headers, name="Depot", kind="building", address={"city": "Lyon", "country": "FR"}
    )
    cloud = await _create(client, headers, name="Cloud", kind="virtual")
    imported = await factory.location(name="Imported")

    async def ids(**params: Any) -> list[int]:
        response = await client.get(URL, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return _ids(response.json())

    assert await ids(q="board") == [room["id"]]
    assert await ids(q="LYON") == [lyon["id"]]  # the city matches too
    assert await ids(kind="virtual") == [cloud["id"]]
    assert await ids(country="fr") == [paris["id"], lyon["id"]]
    assert await ids(parent_id=paris["id"]) == [room["id"]]
    assert await ids(root="true") == [paris["id"], lyon["id"], cloud["id"], imported.id]
    assert await ids(root="false") == [room["id"]]
    assert await ids(created_by_id=writer.id) == [paris["id"], room["id"], lyon["id"], cloud["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "city"},
        {"kind": "castle"},
        {"country": "XX"},
        {"country": "France"},
        {"parent_id": "-1"},
        {"cursor": "not-a-cursor"},
    ],
)
async def test_invalid_list_parameters_answer_422(
    client: AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> None:
    assert (await client.get(URL, headers=headers, params=params)).status_code == 422


async def test_list_sorts_by_whitelisted_fields(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for name in ["Beta", "Alpha", "Gamma"]:
        await _create(client, headers, name=name)
    response = await client.get(URL, headers=headers, params={"sort": "name"})
    assert [item["name"] for item in response.json()["items"]] == ["Alpha", "Beta", "Gamma"]
    response = await client.get(URL, headers=headers, params={"sort": "-updated_at"})
    assert [item["name"] for item in response.json()["items"]] == ["Gamma", "Alpha", "Beta"]


async def test_cursor_walk_returns_every_location_once(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    # Repeated names: the id tie-break keeps the walk exact.
    created = [(await _create(client, headers, name=f"Site {n % 2}"))["id"] for n in range(7)]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 2, "sort": "-name"}
    while True:
        page = (await client.get(URL, headers=headers, params=params)).json()
        seen.extend(_ids(page))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
        # A row inserted mid-walk never makes the walk repeat a row.
        await _create(client, headers, name="Site 1")
    assert set(created) <= set(seen)
    assert len(seen) == len(set(seen))


# --- audit --------------------------------------------------------------------------


async def test_every_write_is_audited(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    created = await _create(client, headers, name="Depot", address={"country": "NL"})
    await _patch(client, headers, created["id"], address={"city": "Rotterdam"})
    await client.delete(f"{URL}/{created['id']}", headers=headers)

    auditor = factory.headers(await factory.user(superuser=True))
    response = await client.get(
        "/api/v1/audit-events",
        headers=auditor,
        params={"entity_type": "location", "entity_id": created["id"]},
    )
    events = response.json()["items"]
    assert [event["action"] for event in events] == ["create", "update", "delete"]
    assert all(event["actor_id"] == writer.id for event in events)
    assert events[0]["changes"]["kind"] == [None, "site"]
    assert events[0]["changes"]["country"] == [None, "NL"]
    assert events[1]["changes"] == {"city": [None, "Rotterdam"]}
    assert events[2]["changes"]["name"] == ["Depot", None]
