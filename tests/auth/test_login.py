"""POST /auth/token: one answer for every failure, throttling, argon2id hashes."""

from __future__ import annotations

import asyncio

import jwt
import pytest
from argon2 import PasswordHasher
from httpx import AsyncClient
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import Pool

from app.core.config import Settings
from app.core.security import PasswordHashing
from app.domains.user.models import User
from tests.auth.helpers import login, tokens
from tests.conftest import ClientFactory
from tests.factories import PASSWORD, Factory


async def test_login_answers_a_token_pair(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    response = await login(client, user.email)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"sub", "jti", "iat", "exp", "iss", "aud", "typ"} <= set(claims)
    assert claims["sub"] == str(user.id)
    assert claims["typ"] == "access"


async def test_login_ignores_email_case(client: AsyncClient, factory: Factory) -> None:
    await factory.user(email="Mixed.Case@Example.com".lower())
    response = await login(client, "MIXED.case@example.COM")
    assert response.status_code == 200


async def test_unknown_email_wrong_password_and_inactive_get_the_same_401(
    client: AsyncClient, factory: Factory
) -> None:
    active = await factory.user()
    inactive = await factory.user(active=False)
    answers = [
        await login(client, "nobody@example.com"),
        await login(client, active.email, "wrong password 123"),
        await login(client, inactive.email),
    ]
    for response in answers:
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    bodies = [{k: v for k, v in r.json().items() if k != "request_id"} for r in answers]
    assert bodies[0] == bodies[1] == bodies[2]


async def test_five_failures_lock_the_account_whatever_the_ip(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    for _ in range(5):
        assert (await login(client, user.email, "wrong password 123")).status_code == 401
    locked = await login(client, user.email)  # even the right password
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert locked.headers["content-type"] == "application/problem+json"


async def test_a_success_resets_the_failure_count(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    for _ in range(4):
        await login(client, user.email, "wrong password 123")
    assert (await login(client, user.email)).status_code == 200
    for _ in range(4):
        assert (await login(client, user.email, "wrong password 123")).status_code == 401
    assert (await login(client, user.email)).status_code == 200


async def test_successful_logins_give_their_ip_slot_back(
    client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user()
    async with client_with(LOGIN_MAX_FAILURES_PER_IP=2) as client:
        answers = await asyncio.gather(*(login(client, user.email) for _ in range(2)))
        assert [answer.status_code for answer in answers] == [200, 200]
        for _ in range(3):
            assert (await login(client, user.email)).status_code == 200
        assert (await login(client, user.email, "wrong password 123")).status_code == 401


async def test_missing_form_fields_answer_422(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/token", data={"username": "a@example.com"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_login_upgrades_a_hash_made_with_old_parameters(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    user = await factory.user()
    old = PasswordHasher(time_cost=2, memory_cost=32, parallelism=1).hash(PASSWORD)
    user.password_hash = old
    await session.commit()
    assert (await login(client, user.email)).status_code == 200
    user_id, email = user.id, user.email
    session.expire_all()
    stored = await session.scalar(select(User.password_hash).where(User.id == user_id))
    assert stored != old
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert (await login(client, email)).status_code == 200


async def test_password_hashes_are_argon2id(factory: Factory) -> None:
    user = await factory.user()
    assert user.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize("path", ["/api/v1/users/me", "/api/v1/permissions"])
async def test_tokens_from_login_open_authenticated_routes(
    client: AsyncClient, factory: Factory, path: str
) -> None:
    user = await factory.user()
    pair = await tokens(client, user.email)
    response = await client.get(path, headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert response.status_code == 200


async def test_a_login_holds_no_database_connection_while_hashing(
    client: AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued logins must not take the pool from other requests while argon2 runs."""
    user = await factory.user()
    outstanding = 0
    while_hashing: list[int] = []

    def checked_out(*_: object) -> None:
        nonlocal outstanding
        outstanding += 1

    def checked_in(*_: object) -> None:
        nonlocal outstanding
        outstanding -= 1

    verify = PasswordHashing.verify

    async def observed(self: PasswordHashing, password_hash: str, password: str) -> bool:
        while_hashing.append(outstanding)
        return await verify(self, password_hash, password)

    monkeypatch.setattr(PasswordHashing, "verify", observed)
    event.listen(Pool, "checkout", checked_out)
    event.listen(Pool, "checkin", checked_in)
    try:
        assert (await login(client, user.email)).status_code == 200
    finally:
        event.remove(Pool, "checkout", checked_out)
        event.remove(Pool, "checkin", checked_in)
    assert while_hashing == [0]
