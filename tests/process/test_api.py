"""The process hub through HTTP: links, lists, filters, ETags, concurrency, audit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient

from app.domains.user.models import User
from tests.factories import Factory
from tests.statements import count_statements

URL = "/api/v1/processes"


@pytest.fixture
async def writer(factory: Factory) -> User:
    return await factory.user(permissions=["processes:read", "processes:write"])


@pytest.fixture
async def headers(factory: Factory, writer: User) -> dict[str, str]:
    return factory.headers(writer)


async def _links(factory: Factory, count: int = 2) -> dict[str, list[int]]:
    return {
        "department_ids": [(await factory.department()).id for _ in range(count)],
        "location_ids": [(await factory.location()).id for _ in range(count)],
        "resource_ids": [(await factory.resource()).id for _ in range(count)],
        "role_ids": [(await factory.role()).id for _ in range(count)],
    }


async def _create(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(URL, headers=headers, json={"title": "Onboarding", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


# --- who may call -----------------------------------------------------------------


async def test_listing_without_a_token_answers_401(client: AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401


async def test_writing_without_the_permission_answers_403(
    client: AsyncClient, factory: Factory
) -> None:
    reader = await factory.user(permissions=["processes:read"])
    response = await client.post(URL, headers=factory.headers(reader), json={"title": "x"})
    assert response.status_code == 403
    assert (await client.get(URL, headers=factory.headers(reader))).status_code == 200


# --- create and read ----------------------------------------------------------------


async def test_create_links_and_embeds_summaries(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    links = await _links(factory)
    owner = await factory.user(full_name="Olivia Owner")
    response = await client.post(
        URL,
        headers=headers,
        json={"title": "Payroll", "criticality": "high", "owner_id": owner.id, **links},
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"{URL}/{body['id']}"
    assert response.headers["etag"] == 'W/"1"'
    assert body["title"] == "Payroll"
    assert body["status"] == "draft"
    assert body["criticality"] == "high"
    assert body["owner"] == {"id": owner.id, "full_name": "Olivia Owner"}
    assert body["created_by"] == {"id": writer.id, "full_name": writer.full_name}
    for kind in ("departments", "locations", "resources", "roles"):
        assert _ids(body[kind]) == sorted(links[f"{kind[:-1]}_ids"])
        assert all(set(item) == {"id", "name"} for item in body[kind])

    read = await client.get(f"{URL}/{body['id']}", headers=headers)
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["etag"] == 'W/"1"'


async def test_repeated_ids_count_once(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    department = await factory.department()
    body = await _create(client, headers, department_ids=[department.id] * 3)
    assert _ids(body["departments"]) == [department.id]


async def test_unknown_ids_answer_422_naming_every_one_and_write_nothing(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    department = await factory.department()
    response = await client.post(
        URL,
        headers=headers,
        json={
            "title": "Ghost",
            "department_ids": [department.id, 990001, 990002],
            "role_ids": [990009],
        },
    )
    assert response.status_code == 422
    assert all(str(ghost) in response.json()["detail"] for ghost in (990001, 990002, 990009))
    errors = {error["loc"][-1]: error["missing"] for error in response.json()["errors"]}
    assert errors == {"department_ids": [990001, 990002], "role_ids": [990009]}
    listing = await client.get(URL, headers=headers)
    assert listing.json()["items"] == []


async def test_link_ids_of_every_kind_are_checked_and_replaced_in_one_statement(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    links = await _links(factory, count=5)
    await client.get("/api/v1/permissions", headers=headers)  # warm the token cache
    with count_statements() as statements:
        await _create(client, headers, **links)
    link_statements = [s for s in statements if "departments_wanted" in s]
    assert len(link_statements) == 1
    assert all(f"{kind}_wanted" in link_statements[0] for kind in ("locations", "roles"))


async def test_more_than_500_ids_answer_422(client: AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(
        URL, headers=headers, json={"title": "Too many", "role_ids": list(range(1, 502))}
    )
    assert response.status_code == 422


async def test_unknown_owner_answers_422(client: AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(URL, headers=headers, json={"title": "x", "owner_id": 424242})
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"title": ""},
        {"title": "x", "status": "archived"},
        {"title": "x", "criticality": "extreme"},
        {"title": "x", "unknown_field": 1},
        {"title": "x" * 301},
        {"title": "x", "department_ids": [0]},
        {"title": "x", "department_ids": [2**63]},
    ],
)
async def test_invalid_bodies_answer_422(
    client: AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(URL, headers=headers, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_process_answers_404_and_huge_ids_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    assert (await client.get(f"{URL}/123456", headers=headers)).status_code == 404
    assert (await client.get(f"{URL}/{2**63}", headers=headers)).status_code == 422
    assert (await client.get(f"{URL}/abc", headers=headers)).status_code == 422


# --- update -------------------------------------------------------------------------


async def test_patch_replaces_present_lists_and_leaves_absent_ones(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    links = await _links(factory)
    created = await _create(client, headers, **links)
    new_role = await factory.role()
    response = await client.patch(
        f"{URL}/{created['id']}",
        headers=headers,
        json={"role_ids": [new_role.id], "department_ids": []},
    )
    assert response.status_code == 200
    body = response.json()
    assert _ids(body["roles"]) == [new_role.id]
    assert body["departments"] == []
    assert _ids(body["locations"]) == sorted(links["location_ids"])
    assert _ids(body["resources"]) == sorted(links["resource_ids"])
    assert body["version"] == 2
    assert response.headers["etag"] == 'W/"2"'


async def test_patch_of_fields_only_bumps_the_version(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    response = await client.patch(
        f"{URL}/{created['id']}", headers=headers, json={"status": "active"}
    )
    assert response.json()["status"] == "active"
    assert response.json()["version"] == 2
    assert response.json()["updated_at"] >= created["updated_at"]


async def test_patch_with_nothing_changed_keeps_the_version(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, status="active")
    response = await client.patch(
        f"{URL}/{created['id']}", headers=headers, json={"status": "active"}
    )
    assert response.json()["version"] == 1


async def test_patch_with_null_for_a_required_field_answers_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    for body in ({"title": None}, {"role_ids": None}):
        response = await client.patch(f"{URL}/{created['id']}", headers=headers, json=body)
        assert response.status_code == 422


async def test_patch_with_stale_etag_answers_412(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    first = await client.patch(path, headers={**headers, "If-Match": 'W/"1"'}, json={"title": "A"})
    assert first.status_code == 200
    stale = await client.patch(path, headers={**headers, "If-Match": 'W/"1"'}, json={"title": "B"})
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"2"'
    assert (await client.get(path, headers=headers)).json()["title"] == "A"


async def test_patch_with_unknown_ids_changes_nothing(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    links = await _links(factory)
    created = await _create(client, headers, **links)
    path = f"{URL}/{created['id']}"
    response = await client.patch(
        path, headers=headers, json={"title": "Renamed", "role_ids": [links["role_ids"][0], 777777]}
    )
    assert response.status_code == 422
    after = (await client.get(path, headers=headers)).json()
    assert after == created


async def test_concurrent_link_replacements_leave_one_writers_set(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    roles = [(await factory.role()).id for _ in range(10)]
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    sets = [sorted({roles[i % 10], roles[(i * 3) % 10], roles[(i * 7) % 10]}) for i in range(50)]
    responses = await asyncio.gather(
        *(client.patch(path, headers=headers, json={"role_ids": s}) for s in sets)
    )
    assert [r.status_code for r in responses] == [200] * 50
    final = _ids((await client.get(path, headers=headers)).json()["roles"])
    assert final in sets


async def test_concurrent_if_match_updates_let_exactly_one_through(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    responses = await asyncio.gather(
        *(
            client.patch(path, headers={**headers, "If-Match": 'W/"1"'}, json={"title": f"T{i}"})
            for i in range(10)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 9


# --- delete -------------------------------------------------------------------------


async def test_delete_answers_204_and_then_404(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, **(await _links(factory)))
    path = f"{URL}/{created['id']}"
    assert (await client.delete(path, headers={**headers, "If-Match": 'W/"9"'})).status_code == 412
    assert (await client.delete(path, headers=headers)).status_code == 204
    assert (await client.get(path, headers=headers)).status_code == 404
    assert (await client.delete(path, headers=headers)).status_code == 404


async def test_deleting_a_linked_entity_removes_only_the_link(
    client: AsyncClient, factory: Factory, headers: dict[str, str], session: Any
) -> None:
    resource = await factory.resource()
    created = await _create(client, headers, resource_ids=[resource.id])
    await session.delete(resource)
    await session.commit()
    body = (await client.get(f"{URL}/{created['id']}", headers=headers)).json()
    assert body["resources"] == []


# --- lists --------------------------------------------------------------------------


async def test_a_page_loads_in_two_statements_whatever_its_size(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    links = await _links(factory, count=3)
    for i in range(30):
        await _create(client, headers, title=f"P{i}", **links)
    await client.get("/api/v1/permissions", headers=headers)
    counts = []
    for limit in (2, 30):
        with count_statements() as statements:
            response = await client.get(URL, headers=headers, params={"limit": limit})
        assert len(response.json()["items"]) == limit
        counts.append(len(statements))
    assert counts == [2, 2]


async def test_list_items_read_exactly_like_get_by_id(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    """Owned and linked, or bare: the page and GET by id embed the same summaries."""
    links = await _links(factory, count=3)
    owner = await factory.user(full_name="Olivia Owner")
    full = await _create(client, headers, title="Linked", owner_id=owner.id, **links)
    bare = await _create(client, headers, title="Bare")
    assert bare["owner"] is None
    assert all(bare[kind] == [] for kind in ("departments", "locations", "resources", "roles"))
    page = (await client.get(URL, headers=headers, params={"sort": "title"})).json()
    assert page["items"] == [bare, full]
    for body in (full, bare):
        assert (await client.get(f"{URL}/{body['id']}", headers=headers)).json() == body


async def test_filters_select_the_right_processes(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    root = await factory.department(name="Operations")
    child = await factory.department(parent=root, name="Logistics")
    grandchild = await factory.department(parent=child, name="Fleet")
    site = await factory.location()
    owner = await factory.user()
    role = await factory.role()
    resource = await factory.resource()
    a = await _create(client, headers, title="Route planning", department_ids=[grandchild.id])
    b = await _create(
        client,
        headers,
        title="Vendor audit",
        description="Yearly review of 100% of suppliers",
        status="active",
        criticality="critical",
        owner_id=owner.id,
        department_ids=[root.id],
        location_ids=[site.id],
        role_ids=[role.id],
        resource_ids=[resource.id],
    )

    async def ids(**params: Any) -> list[int]:
        response = await client.get(URL, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return _ids(response.json()["items"])

    assert await ids(department_id=root.id) == [b["id"]]
    assert await ids(department_id=root.id, include_descendants=True) == [a["id"], b["id"]]
    assert await ids(department_id=child.id, include_descendants=True) == [a["id"]]
    assert await ids(location_id=site.id) == [b["id"]]
    assert await ids(role_id=role.id) == [b["id"]]
    assert await ids(resource_id=resource.id) == [b["id"]]
    assert await ids(owner_id=owner.id) == [b["id"]]
    assert await ids(status="active") == [b["id"]]
    assert await ids(status=["active", "draft"]) == [a["id"], b["id"]]
    assert await ids(criticality="critical") == [b["id"]]
    assert await ids(q="PLANNING") == [a["id"]]
    assert await ids(q="100%") == [b["id"]]
    assert await ids(q="_") == []
    assert await ids(created_after=a["created_at"]) == [a["id"], b["id"]]
    assert await ids(created_before=a["created_at"]) == []


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "password"},
        {"sort": "title;drop table processes"},
        {"cursor": "garbage"},
        {"cursor": "eyJzIjpbImlkIl0sInYiOlsxXX0.AAAA"},
        {"limit": 0},
        {"limit": 201},
        {"limit": -5},
        {"status": "archived"},
        {"department_id": "abc"},
        {"created_after": "yesterday"},
        {"created_after": "2024-01-01T00:00:00"},
    ],
)
async def test_bad_list_parameters_answer_422(
    client: AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> None:
    response = await client.get(URL, headers=headers, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_cursor_from_another_sort_answers_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for i in range(3):
        await _create(client, headers, title=f"P{i}")
    first = (await client.get(URL, headers=headers, params={"limit": 1})).json()
    response = await client.get(
        URL, headers=headers, params={"limit": 1, "sort": "title", "cursor": first["next_cursor"]}
    )
    assert response.status_code == 422


async def test_walking_pages_while_inserting_sees_every_row_once(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    originals = {(await _create(client, headers, title=f"P{i:02}"))["id"] for i in range(12)}
    for sort in ("id", "-created_at", "title", "-title,status"):
        seen: list[int] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 5, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get(URL, headers=headers, params=params)).json()
            seen.extend(_ids(page["items"]))
            await _create(client, headers, title=f"inserted while walking {sort}")
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen))
        assert originals <= set(seen)


async def test_walking_a_link_filter_in_id_order_returns_its_processes_once_in_order(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    links = await _links(factory, count=1)
    linked = []
    for i in range(7):
        linked.append((await _create(client, headers, title=f"L{i}", **links))["id"])
        await _create(client, headers, title=f"other {i}")
    for name in ("department_id", "location_id", "resource_id", "role_id"):
        value = links[f"{name[:-3]}_ids"][0]
        for sort, expected in (("id", sorted(linked)), ("-id", sorted(linked, reverse=True))):
            seen: list[int] = []
            cursor = None
            while True:
                params: dict[str, Any] = {name: value, "limit": 3, "sort": sort}
                if cursor:
                    params["cursor"] = cursor
                page = (await client.get(URL, headers=headers, params=params)).json()
                seen.extend(_ids(page["items"]))
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert seen == expected, (name, sort)


async def test_sorting_and_total(client: AsyncClient, headers: dict[str, str]) -> None:
    for title in ("b", "c", "a"):
        await _create(client, headers, title=title)
    page = (await client.get(URL, headers=headers, params={"sort": "-title"})).json()
    assert [item["title"] for item in page["items"]] == ["c", "b", "a"]
    assert "total" not in page
    counted = (
        await client.get(URL, headers=headers, params={"include_total": "true", "limit": 1})
    ).json()
    assert counted["total"] == 3
    assert len(counted["items"]) == 1


async def test_reverse_views_list_linked_processes(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    links = await _links(factory, count=1)
    linked = await _create(client, headers, **links)
    await _create(client, headers, title="unlinked")
    for collection in ("departments", "locations", "resources", "roles"):
        entity_id = links[f"{collection[:-1]}_ids"][0]
        response = await client.get(f"/api/v1/{collection}/{entity_id}/processes", headers=headers)
        assert response.status_code == 200
        assert _ids(response.json()["items"]) == [linked["id"]]
        missing = await client.get(f"/api/v1/{collection}/999999/processes", headers=headers)
        assert missing.status_code == 404


# --- audit --------------------------------------------------------------------------


async def test_every_write_leaves_an_audit_event_with_link_changes(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    auditor = await factory.user(permissions=["audit:read"])
    role_a, role_b = await factory.role(), await factory.role()
    created = await _create(client, headers, role_ids=[role_a.id])
    path = f"{URL}/{created['id']}"
    await client.patch(path, headers=headers, json={"title": "Renamed", "role_ids": [role_b.id]})
    await client.delete(path, headers=headers)
    events = (
        await client.get(
            "/api/v1/audit-events",
            headers=factory.headers(auditor),
            params={"entity_type": "process", "entity_id": created["id"]},
        )
    ).json()["items"]
    assert [e["action"] for e in events] == ["create", "update", "delete"]
    assert all(e["actor_id"] == writer.id for e in events)
    assert events[0]["changes"]["role_ids"] == {"added": [role_a.id], "removed": []}
    assert events[1]["changes"]["title"] == ["Onboarding", "Renamed"]
    assert events[1]["changes"]["role_ids"] == {"added": [role_b.id], "removed": [role_a.id]}
    assert events[2]["changes"]["title"] == ["Renamed", None]
