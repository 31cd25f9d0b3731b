"""Service accounts: users without a password, acting only through API tokens."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import PasswordHashing
from app.domains.user.models import User
from tests.auth.helpers import bearer, login
from tests.factories import Factory

USERS = "/api/v1/users"
TOKENS = "/api/v1/api-tokens"


async def _service_account(client: AsyncClient, headers: dict[str, str], **extra: Any) -> Response:
    body = {"email": "ci-bot@example.com", "full_name": "CI bot", "service_account": True}
    return await client.post(USERS, headers=headers, json={**body, **extra})


async def _created(client: AsyncClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = await _service_account(client, headers, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_superuser_creates_a_service_account(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    role = await factory.role(permissions=["processes:read"])
    account = await _created(client, factory.headers(admin), role_ids=[role.id])
    assert account["is_service_account"] is True
    assert account["roles"] == [{"id": role.id, "name": role.name}]
    me = await client.get(f"{USERS}/{admin.id}", headers=factory.headers(admin))
    assert me.json()["is_service_account"] is False

    listed = await client.get(
        USERS, headers=factory.headers(admin), params={"is_service_account": "true"}
    )
    assert [user["id"] for user in listed.json()["items"]] == [account["id"]]
    people = await client.get(
        USERS, headers=factory.headers(admin), params={"is_service_account": "false"}
    )
    assert [user["id"] for user in people.json()["items"]] == [admin.id]


async def test_only_a_superuser_creates_a_service_account(
    client: AsyncClient, factory: Factory
) -> None:
    manager = await factory.user(permissions=["users:read", "users:write"])
    response = await _service_account(client, factory.headers(manager))
    assert response.status_code == 403
    assert response.json()["detail"] == "Only a superuser creates a service account."
    assert (await _service_account(client, {})).status_code == 401


async def test_a_service_account_has_no_password_and_a_person_needs_one(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    with_password = await _service_account(
        client, factory.headers(admin), password="a long enough password"
    )
    assert with_password.status_code == 422
    person = await client.post(
        USERS,
        headers=factory.headers(admin),
        json={"email": "nopass@example.com", "full_name": "No Password"},
    )
    assert person.status_code == 422
    assert "password is required" in person.text


async def test_a_service_account_cannot_sign_in_and_costs_what_an_unknown_email_costs(
    client: AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await factory.user(superuser=True)
    account = await _created(client, factory.headers(admin))
    verified: list[str] = []
    verify = PasswordHashing.verify

    async def spy(self: PasswordHashing, password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return await verify(self, password_hash, password)

    monkeypatch.setattr(PasswordHashing, "verify", spy)
    service = await login(client, account["email"], "any password at all")
    unknown = await login(client, "nobody@example.com", "any password at all")
    for empty in ("", " "):
        assert (await login(client, account["email"], empty)).status_code in {401, 422}

    assert service.status_code == unknown.status_code == 401
    assert service.json()["detail"] == unknown.json()["detail"] == "Incorrect email or password."
    # One argon2 verification each, against the same dummy hash: the same work.
    assert verified[0] == verified[1]
    assert verified[0].startswith("$argon2id$")


async def test_a_superuser_creates_api_tokens_for_a_service_account_within_its_roles(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    role = await factory.role(permissions=["processes:read"])
    account = await _created(client, factory.headers(admin), role_ids=[role.id])
    headers = factory.headers(admin)

    beyond = await client.post(
        TOKENS,
        headers=headers,
        json={
            "name": "ci",
            "permissions": ["processes:read", "processes:write"],
            "user_id": account["id"],
        },
    )
    assert beyond.status_code == 403
    assert "processes:write" in beyond.json()["detail"]

    created = await client.post(
        TOKENS,
        headers=headers,
        json={"name": "ci", "permissions": ["processes:read"], "user_id": account["id"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == account["id"]
    token = bearer(created.json()["token"])
    me = await client.get(f"{USERS}/me", headers=token)
    assert me.json()["id"] == account["id"]
    assert (await client.get("/api/v1/processes", headers=token)).status_code == 200

    listed = await client.get(TOKENS, headers=headers, params={"user_id": account["id"]})
    assert [t["id"] for t in listed.json()["items"]] == [created.json()["id"]]
    # The account holds only API tokens: its own token cannot make another.
    child = await client.post(TOKENS, headers=token, json={"name": "child", "permissions": []})
    assert child.status_code == 403


async def test_api_tokens_for_another_account_are_for_service_accounts_and_superusers(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    manager = await factory.user(permissions=["users:read", "users:write"])
    person = await factory.user()
    account = await _created(client, factory.headers(admin))

    async def create(headers: dict[str, str], user_id: int) -> Response:
        body = {"name": "ci", "permissions": [], "user_id": user_id}
        return await client.post(TOKENS, headers=headers, json=body)

    assert (await create(factory.headers(manager), account["id"])).status_code == 403
    for_a_person = await create(factory.headers(admin), person.id)
    assert for_a_person.status_code == 422
    assert "not a service account" in for_a_person.json()["detail"]
    unknown = await create(factory.headers(admin), 999_999)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["missing"] == [999_999]
    own = await create(factory.headers(manager), manager.id)  # naming oneself is fine
    assert own.status_code == 201


async def test_a_service_account_gets_no_password(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    account = await _created(client, factory.headers(admin))
    response = await client.patch(
        f"{USERS}/{account['id']}",
        headers=factory.headers(admin),
        json={"password": "a long enough password"},
    )
    assert response.status_code == 422
    assert "service account" in response.json()["detail"]
    signed_in = await login(client, account["email"], "a long enough password")
    assert signed_in.status_code == 401


async def test_deactivating_a_service_account_ends_its_tokens(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    account = await _created(client, factory.headers(admin))
    created = await client.post(
        TOKENS,
        headers=factory.headers(admin),
        json={"name": "ci", "permissions": [], "user_id": account["id"]},
    )
    token = bearer(created.json()["token"])
    assert (await client.get(f"{USERS}/me", headers=token)).status_code == 200
    off = await client.patch(
        f"{USERS}/{account['id']}", headers=factory.headers(admin), json={"is_active": False}
    )
    assert off.status_code == 200
    assert (await client.get(f"{USERS}/me", headers=token)).status_code == 401
    refused = await client.post(
        TOKENS,
        headers=factory.headers(admin),
        json={"name": "ci", "permissions": [], "user_id": account["id"]},
    )
    assert refused.status_code == 409


async def test_a_superuser_who_made_tokens_for_a_service_account_is_their_author(
    client: AsyncClient, factory: Factory
) -> None:
    """Deleting them answers 409 like any author's deletion: deactivate them instead."""
    admin, maker = await factory.user(superuser=True), await factory.user(superuser=True)
    account = await _created(client, factory.headers(admin))
    created = await client.post(
        TOKENS,
        headers=factory.headers(maker),
        json={"name": "ci", "permissions": [], "user_id": account["id"]},
    )
    assert created.status_code == 201
    response = await client.delete(f"{USERS}/{maker.id}", headers=factory.headers(admin))
    assert response.status_code == 409
    assert "author" in response.json()["detail"]


async def test_a_user_who_made_only_their_own_tokens_can_be_deleted(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    admin, user = await factory.user(superuser=True), await factory.user()
    created = await client.post(
        TOKENS, headers=factory.headers(user), json={"name": "mine", "permissions": []}
    )
    assert created.status_code == 201
    response = await client.delete(f"{USERS}/{user.id}", headers=factory.headers(admin))
    assert response.status_code == 204, response.text
    assert await session.scalar(select(User.id).where(User.id == user.id)) is None
