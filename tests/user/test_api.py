"""Users through HTTP: accounts, roles, placement, and no way to escalate."""

from __future__ import annotations

import asyncio
from typing import Any

from httpx import AsyncClient

from tests.factories import PASSWORD, Factory

URL = "/api/v1/users"
NEW = {"full_name": "Nora New", "password": "a long enough password"}


async def test_create_user_answers_201_without_secrets(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(permissions=["users:read", "users:write", "processes:read"])
    role = await factory.role(permissions=["processes:read"])
    response = await client.post(
        URL,
        headers=factory.headers(admin),
        json={**NEW, "email": "Nora@Example.COM", "role_ids": [role.id], "job_title": "Analyst"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{URL}/{body['id']}"
    assert response.headers["etag"] == 'W/"1"'
    assert body["email"] == "nora@example.com"
    assert body["roles"] == [{"id": role.id, "name": role.name}]
    assert body["created_by_id"] == admin.id
    assert body["department"] is None
    assert "password" not in response.text
    assert "argon2" not in response.text


async def test_emails_are_unique_ignoring_case(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    await factory.user(email="taken@example.com")
    response = await client.post(
        URL, headers=factory.headers(admin), json={**NEW, "email": "TAKEN@example.com"}
    )
    assert response.status_code == 409


async def test_concurrent_creates_with_one_email_give_one_201(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    headers = factory.headers(admin)
    responses = await asyncio.gather(
        *(
            client.post(URL, headers=headers, json={**NEW, "email": "race@example.com"})
            for _ in range(10)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 9


async def test_invalid_user_bodies_answer_422(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    headers = factory.headers(admin)
    for body in (
        {**NEW, "email": "not-an-email"},
        {**NEW, "email": "a@example.com", "password": "short"},
        {**NEW, "email": "a@example.com", "password": "x" * 129},
        {**NEW, "email": "a@example.com", "role_ids": [424242]},
        {**NEW, "email": "a@example.com", "department_id": 424242},
        {**NEW, "email": "a@example.com", "password_hash": "x"},
    ):
        response = await client.post(URL, headers=headers, json=body)
        assert response.status_code == 422, body


async def test_users_me_changes_only_name_and_title(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    headers = factory.headers(user)
    for escalation in (
        {"is_superuser": True},
        {"role_ids": [1]},
        {"is_active": True},
        {"email": "new@example.com"},
    ):
        response = await client.patch(f"{URL}/me", headers=headers, json=escalation)
        assert response.status_code == 422, escalation
    response = await client.patch(
        f"{URL}/me", headers=headers, json={"full_name": "Renamed", "job_title": "Lead"}
    )
    assert response.status_code == 200
    assert response.json()["full_name"] == "Renamed"
    assert response.json()["is_superuser"] is False
    me = await client.get(f"{URL}/me", headers=headers)
    assert me.json()["job_title"] == "Lead"


async def test_only_a_superuser_grants_superuser(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(permissions=["users:read", "users:write"])
    headers = factory.headers(admin)
    created = await client.post(
        URL, headers=headers, json={**NEW, "email": "su@example.com", "is_superuser": True}
    )
    assert created.status_code == 403
    self_grant = await client.patch(
        f"{URL}/{admin.id}", headers=headers, json={"is_superuser": True}
    )
    assert self_grant.status_code == 403


async def test_granting_roles_needs_their_permissions(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(permissions=["users:read", "users:write"])
    powerful = await factory.role(permissions=["audit:read", "users:write"])
    modest = await factory.role(permissions=["users:read"])
    target = await factory.user()
    headers = factory.headers(admin)
    refused = await client.patch(
        f"{URL}/{target.id}", headers=headers, json={"role_ids": [powerful.id]}
    )
    assert refused.status_code == 403
    assert "audit:read" in refused.json()["detail"]
    own = await client.patch(f"{URL}/{admin.id}", headers=headers, json={"role_ids": [powerful.id]})
    assert own.status_code == 403
    allowed = await client.patch(
        f"{URL}/{target.id}", headers=headers, json={"role_ids": [modest.id]}
    )
    assert allowed.status_code == 200
    assert allowed.json()["roles"] == [{"id": modest.id, "name": modest.name}]
    assert allowed.json()["version"] == 2


async def test_a_non_superuser_cannot_touch_a_superuser(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(permissions=["users:read", "users:write"])
    root = await factory.user(superuser=True)
    headers = factory.headers(admin)
    assert (
        await client.patch(
            f"{URL}/{root.id}", headers=headers, json={"password": "takeover password"}
        )
    ).status_code == 403
    assert (await client.delete(f"{URL}/{root.id}", headers=headers)).status_code == 403


async def test_deleting_a_user_who_created_records_answers_409(
    client: AsyncClient, factory: Factory
) -> None:
    root = await factory.user(superuser=True)
    author = await factory.user(permissions=["roles:write"])
    created = await client.post(
        "/api/v1/roles", headers=factory.headers(author), json={"name": "Made by author"}
    )
    assert created.status_code == 201
    response = await client.delete(f"{URL}/{author.id}", headers=factory.headers(root))
    assert response.status_code == 409
    assert "deactivate" in response.json()["detail"]
    plain = await factory.user()
    assert (
        await client.delete(f"{URL}/{plain.id}", headers=factory.headers(root))
    ).status_code == 204
    assert (await client.get(f"{URL}/{plain.id}", headers=factory.headers(root))).status_code == 404


async def test_nobody_deletes_or_deactivates_themselves(
    client: AsyncClient, factory: Factory
) -> None:
    root = await factory.user(superuser=True)
    headers = factory.headers(root)
    assert (await client.delete(f"{URL}/{root.id}", headers=headers)).status_code == 409
    response = await client.patch(f"{URL}/{root.id}", headers=headers, json={"is_active": False})
    assert response.status_code == 409


async def test_stale_if_match_answers_412(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    target = await factory.user()
    headers = factory.headers(root)
    path = f"{URL}/{target.id}"
    etag = (await client.get(path, headers=headers)).headers["etag"]
    ok = await client.patch(path, headers={**headers, "If-Match": etag}, json={"full_name": "A"})
    assert ok.status_code == 200
    stale = await client.patch(path, headers={**headers, "If-Match": etag}, json={"full_name": "B"})
    assert stale.status_code == 412


async def test_placement_in_a_department_and_location(
    client: AsyncClient, factory: Factory
) -> None:
    root = await factory.user(superuser=True)
    department = await factory.department(name="Finance")
    location = await factory.location(name="Head office")
    target = await factory.user()
    response = await client.patch(
        f"{URL}/{target.id}",
        headers=factory.headers(root),
        json={"department_id": department.id, "location_id": location.id},
    )
    assert response.status_code == 200
    assert response.json()["department"] == {"id": department.id, "name": "Finance"}
    assert response.json()["location"] == {"id": location.id, "name": "Head office"}
    listed = await client.get(
        URL, headers=factory.headers(root), params={"department_id": department.id}
    )
    assert [u["id"] for u in listed.json()["items"]] == [target.id]


async def test_list_filters_and_pages(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True, full_name="Root")
    for i in range(5):
        await factory.user(full_name=f"Zed {i}", active=i % 2 == 0)
    headers = factory.headers(root)

    async def names(**params: Any) -> list[str]:
        response = await client.get(URL, headers=headers, params=params)
        assert response.status_code == 200
        return [u["full_name"] for u in response.json()["items"]]

    assert await names(q="zed", is_active=False) == ["Zed 1", "Zed 3"]
    assert await names(q="ZED", sort="-full_name", limit=2) == ["Zed 4", "Zed 3"]
    first = (await client.get(URL, headers=headers, params={"limit": 3})).json()
    second = (
        await client.get(URL, headers=headers, params={"limit": 3, "cursor": first["next_cursor"]})
    ).json()
    assert second["next_cursor"] is None
    ids = [u["id"] for u in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 6


async def test_user_writes_are_audited_without_secrets(
    client: AsyncClient, factory: Factory
) -> None:
    root = await factory.user(superuser=True)
    headers = factory.headers(root)
    created = (
        await client.post(URL, headers=headers, json={**NEW, "email": "aud@example.com"})
    ).json()
    await client.patch(
        f"{URL}/{created['id']}", headers=headers, json={"password": "another long password"}
    )
    events = (
        await client.get(
            "/api/v1/audit-events",
            headers=headers,
            params={"entity_type": "user", "entity_id": created["id"]},
        )
    ).json()["items"]
    assert [e["action"] for e in events] == ["create", "update"]
    assert events[0]["changes"]["email"] == [None, "aud@example.com"]
    assert events[1]["changes"] == {"password_changed": [None, True]}
    dumped = str(events)
    assert "argon2" not in dumped
    assert NEW["password"] not in dumped
    assert PASSWORD not in dumped
