"""Roles through HTTP: names, permissions, and nobody grants what they do not hold."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from tests.factories import Factory

URL = "/api/v1/roles"


async def test_create_read_update_delete(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    headers = factory.headers(root)
    created = await client.post(
        URL,
        headers=headers,
        json={"name": " Quality Lead ", "permissions": ["processes:read", "processes:read"]},
    )
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "Quality Lead"
    assert body["permissions"] == ["processes:read"]
    path = f"{URL}/{body['id']}"
    assert (await client.get(path, headers=headers)).headers["etag"] == 'W/"1"'
    patched = await client.patch(
        path, headers={**headers, "If-Match": 'W/"1"'}, json={"description": "Owns quality"}
    )
    assert patched.status_code == 200
    assert patched.json()["version"] == 2
    assert (await client.delete(path, headers={**headers, "If-Match": 'W/"1"'})).status_code == 412
    assert (await client.delete(path, headers=headers)).status_code == 204
    assert (await client.get(path, headers=headers)).status_code == 404


async def test_names_are_unique_ignoring_case(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    await factory.role(name="Auditor")
    response = await client.post(URL, headers=factory.headers(root), json={"name": "AUDITOR"})
    assert response.status_code == 409


async def test_concurrent_creates_with_one_name_give_one_201(
    client: AsyncClient, factory: Factory
) -> None:
    root = await factory.user(superuser=True)
    headers = factory.headers(root)
    responses = await asyncio.gather(
        *(client.post(URL, headers=headers, json={"name": "Racer"}) for _ in range(10))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9


async def test_unknown_permissions_answer_422(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    response = await client.post(
        URL, headers=factory.headers(root), json={"name": "X", "permissions": ["everything:all"]}
    )
    assert response.status_code == 422


async def test_nobody_creates_or_edits_a_role_beyond_their_own_permissions(
    client: AsyncClient, factory: Factory
) -> None:
    manager = await factory.user(permissions=["roles:read", "roles:write", "processes:read"])
    headers = factory.headers(manager)
    beyond = await client.post(
        URL, headers=headers, json={"name": "Sneaky", "permissions": ["users:write"]}
    )
    assert beyond.status_code == 403
    within = await client.post(
        URL, headers=headers, json={"name": "Reader", "permissions": ["processes:read"]}
    )
    assert within.status_code == 201
    path = f"{URL}/{within.json()['id']}"
    widened = await client.patch(path, headers=headers, json={"permissions": ["audit:read"]})
    assert widened.status_code == 403
    admin_role = await factory.role(permissions=["users:write"])
    touched = await client.patch(f"{URL}/{admin_role.id}", headers=headers, json={"name": "Mine"})
    assert touched.status_code == 403


async def test_a_role_held_by_users_cannot_be_deleted(
    client: AsyncClient, factory: Factory
) -> None:
    root = await factory.user(superuser=True)
    role = await factory.role()
    await factory.user(roles=[role])
    response = await client.delete(f"{URL}/{role.id}", headers=factory.headers(root))
    assert response.status_code == 409
    assert "1 user" in response.json()["detail"]


async def test_list_filters_by_permission_and_name(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    await factory.role(name="Auditors", permissions=["audit:read"])
    await factory.role(name="Planners", permissions=["processes:write"])
    headers = factory.headers(root)
    by_permission = await client.get(URL, headers=headers, params={"permission": "audit:read"})
    assert [r["name"] for r in by_permission.json()["items"]] == ["Auditors"]
    by_name = await client.get(URL, headers=headers, params={"q": "plan"})
    assert [r["name"] for r in by_name.json()["items"]] == ["Planners"]


async def test_role_writes_are_audited(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    headers = factory.headers(root)
    created = (await client.post(URL, headers=headers, json={"name": "Temp"})).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=headers, json={"permissions": ["roles:read"]}
    )
    events = (
        await client.get("/api/v1/audit-events", headers=headers, params={"entity_type": "role"})
    ).json()["items"]
    assert [e["action"] for e in events] == ["create", "update"]
    assert events[1]["changes"]["permissions"] == [[], ["roles:read"]]


async def test_refusals_name_the_lacking_permissions_before_any_if_match(
    client: AsyncClient, factory: Factory
) -> None:
    manager = await factory.user(permissions=["roles:write"])
    role = await factory.role(permissions=["roles:write", "audit:read"])
    headers = factory.headers(manager)
    stale = {**headers, "If-Match": 'W/"9"'}
    for response in (
        await client.post(URL, headers=headers, json={"name": "A", "permissions": ["audit:read"]}),
        await client.patch(f"{URL}/{role.id}", headers=stale, json={"name": "Renamed"}),
        await client.delete(f"{URL}/{role.id}", headers=stale),
    ):
        assert response.status_code == 403
        assert response.json()["detail"].endswith("permissions you do not hold: audit:read.")
