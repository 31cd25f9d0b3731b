"""Delegated administration: nobody manages an account that holds more than they hold."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.user.models import User, user_roles
from tests.auth.helpers import login
from tests.factories import Factory

URL = "/api/v1/users"
ACTOR = ["users:read", "users:write", "processes:read"]
TARGETS = {
    "subset": ["processes:read"],
    "superset": [*ACTOR, "roles:write"],
    "disjoint": ["audit:read"],
}
MISSING = {"superset": "roles:write", "disjoint": "audit:read", "superuser": "superuser"}
BODIES: dict[str, dict[str, Any]] = {
    "email": {"email": "renamed@example.com"},
    "full_name": {"full_name": "Renamed"},
    "job_title": {"job_title": "Auditor"},
    "reactivate": {"is_active": True},
    "deactivate": {"is_active": False},
    "password": {"password": "a brand new password"},
    "is_superuser": {"is_superuser": True},
}
OPERATIONS = [*BODIES, "role_ids", "placement", "delete"]
OWN_ACCOUNT = {"password": 403, "deactivate": 409, "delete": 409}


def _expected(actor: str, target: str, operation: str) -> int:
    success = 204 if operation == "delete" else 200
    if operation == "is_superuser" and actor != "superuser":
        return 403
    if target == "self":
        return OWN_ACCOUNT.get(operation, success)
    if actor == "superuser" or target == "subset":
        return success
    return 403


async def _send(
    client: AsyncClient, factory: Factory, operation: str, target: User, actor: User
) -> Response:
    path, headers = f"{URL}/{target.id}", factory.headers(actor)
    if operation == "delete":
        return await client.delete(path, headers=headers)
    if operation == "role_ids":
        role = await factory.role(permissions=["processes:read"])
        return await client.patch(path, headers=headers, json={"role_ids": [role.id]})
    if operation == "placement":
        department, location = await factory.department(), await factory.location()
        body = {"department_id": department.id, "location_id": location.id}
        return await client.patch(path, headers=headers, json=body)
    return await client.patch(path, headers=headers, json=BODIES[operation])


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("target_kind", ["subset", "superset", "disjoint", "superuser", "self"])
@pytest.mark.parametrize("actor_kind", ["limited", "superuser"])
async def test_writes_to_a_user_need_every_permission_they_hold(
    client: AsyncClient, factory: Factory, actor_kind: str, target_kind: str, operation: str
) -> None:
    actor = await factory.user(
        permissions=ACTOR if actor_kind == "limited" else (), superuser=actor_kind == "superuser"
    )
    active = operation != "reactivate"
    if target_kind == "self":
        target = actor
    elif target_kind == "superuser":
        target = await factory.user(superuser=True, active=active)
    else:
        target = await factory.user(permissions=TARGETS[target_kind], active=active)

    response = await _send(client, factory, operation, target, actor)

    expected = _expected(actor_kind, target_kind, operation)
    assert response.status_code == expected, response.text
    if expected == 403 and actor_kind == "limited" and target_kind in MISSING:
        assert MISSING[target_kind] in response.json()["detail"]
    if expected == 403 and target_kind == "self" and operation == "password":
        assert "/users/me/password" in response.json()["detail"]


@pytest.mark.parametrize("grant", ["nothing", "subset", "superset", "disjoint", "superuser"])
@pytest.mark.parametrize("actor_kind", ["limited", "superuser"])
async def test_a_new_user_holds_only_what_their_creator_holds(
    client: AsyncClient, factory: Factory, actor_kind: str, grant: str
) -> None:
    actor = await factory.user(
        permissions=ACTOR if actor_kind == "limited" else (), superuser=actor_kind == "superuser"
    )
    body: dict[str, Any] = {
        "email": "new@example.com",
        "full_name": "New",
        "password": "a long enough password",
    }
    if grant == "superuser":
        body["is_superuser"] = True
    elif grant in TARGETS:
        body["role_ids"] = [(await factory.role(permissions=TARGETS[grant])).id]

    response = await client.post(URL, headers=factory.headers(actor), json=body)

    if actor_kind == "superuser" or grant in ("nothing", "subset"):
        assert response.status_code == 201, response.text
    else:
        assert response.status_code == 403
        assert MISSING[grant] in response.json()["detail"]


async def test_the_escalation_chain_stops_at_the_password_reset(
    client: AsyncClient, factory: Factory
) -> None:
    attacker = await factory.user(permissions=["users:write"])
    role_manager = await factory.user(permissions=["roles:write"])
    headers = factory.headers(attacker)

    reset = await client.patch(
        f"{URL}/{role_manager.id}", headers=headers, json={"password": "the attacker's choice"}
    )

    assert reset.status_code == 403
    assert reset.json()["detail"].endswith("roles:write.")
    assert (await login(client, role_manager.email, "the attacker's choice")).status_code == 401
    assert (await login(client, role_manager.email)).status_code == 200


async def test_the_refusal_names_every_permission_the_actor_lacks(
    client: AsyncClient, factory: Factory
) -> None:
    actor = await factory.user(permissions=["users:write"])
    target = await factory.user(permissions=["users:write", "roles:write", "audit:read"])

    response = await client.delete(f"{URL}/{target.id}", headers=factory.headers(actor))

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "audit:read, roles:write" in response.json()["detail"]


async def test_a_refusal_comes_before_any_if_match_check(
    client: AsyncClient, factory: Factory
) -> None:
    actor = await factory.user(permissions=["users:write"])
    target = await factory.user(permissions=["audit:read"])
    stale = {**factory.headers(actor), "If-Match": 'W/"9"'}
    path = f"{URL}/{target.id}"
    assert (await client.patch(path, headers=stale, json={"job_title": "X"})).status_code == 403
    assert (await client.delete(path, headers=stale)).status_code == 403


async def test_reading_a_more_powerful_user_is_still_allowed(
    client: AsyncClient, factory: Factory
) -> None:
    reader = await factory.user(permissions=["users:read"])
    root = await factory.user(superuser=True)
    response = await client.get(f"{URL}/{root.id}", headers=factory.headers(reader))
    assert response.status_code == 200


async def test_openapi_documents_the_own_password_refusal(client: AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    refusal = spec["paths"][f"{URL}/{{user_id}}"]["patch"]["responses"]["403"]
    assert "/users/me/password" in refusal["description"]


async def _wait_until_a_request_waits_for_a_lock(session: AsyncSession) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(200):
        if await session.scalar(waiting):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no request ever waited for the user's row")


async def test_a_role_granted_while_the_write_waits_for_the_row_is_checked(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    actor = await factory.user(permissions=["users:write"])
    target = await factory.user()
    powerful = await factory.role(permissions=["roles:write"])
    await session.execute(select(User.id).where(User.id == target.id).with_for_update())
    await session.execute(user_roles.insert().values(user_id=target.id, role_id=powerful.id))

    reset = asyncio.create_task(
        client.patch(
            f"{URL}/{target.id}",
            headers=factory.headers(actor),
            json={"password": "the attacker's choice"},
        )
    )
    await _wait_until_a_request_waits_for_a_lock(session)
    await session.commit()

    response = await asyncio.wait_for(reset, 30)
    assert response.status_code == 403
    assert "roles:write" in response.json()["detail"]


MIXED_SCRIPTS = [
    "r\u043eot@example.com",  # Cyrillic o
    "p\u0430ypal@example.com",  # Cyrillic a
    "\u03b1dmin@example.com",  # Greek alpha
]


async def test_an_email_mixing_scripts_answers_422(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    target = await factory.user()
    headers = factory.headers(root)
    for email in MIXED_SCRIPTS:
        body = {"email": email, "full_name": "Mixed", "password": "a long enough password"}
        created = await client.post(URL, headers=headers, json=body)
        assert created.status_code == 422, email
        assert created.json()["errors"][0]["loc"] == ["body", "email"]
        patched = await client.patch(f"{URL}/{target.id}", headers=headers, json={"email": email})
        assert patched.status_code == 422, email


async def test_an_email_in_one_script_is_accepted(client: AsyncClient, factory: Factory) -> None:
    root = await factory.user(superuser=True)
    headers = factory.headers(root)
    for email in ("j\u00fcrgen@example.com", "\u043f\u043e\u0447\u0442\u0430@example.com"):
        body = {"email": email, "full_name": "One script", "password": "a long enough password"}
        created = await client.post(URL, headers=headers, json=body)
        assert created.status_code == 201, created.text
