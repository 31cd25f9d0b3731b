"""Access tokens: every forgery and misuse is refused with 401; checks cost no SQL."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
from httpx import AsyncClient
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.core.config import Settings
from tests.auth.helpers import bearer, tokens
from tests.conftest import TEST_SECRET, ClientFactory
from tests.factories import Factory
from tests.statements import count_redis_commands

ME = "/api/v1/users/me"


def _claims(settings: Settings, user_id: int, **overrides: object) -> dict[str, object]:
    now = time.time()
    claims: dict[str, object] = {
        "sub": str(user_id),
        "sid": uuid.uuid4().hex,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": int(now) + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "typ": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


async def _status(client: AsyncClient, token: str) -> int:
    return (await client.get(ME, headers=bearer(token))).status_code


async def test_a_well_formed_token_is_accepted(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    token = jwt.encode(_claims(settings, user.id), TEST_SECRET, algorithm="HS256")
    assert await _status(client, token) == 200


async def test_no_token_answers_401_with_www_authenticate(client: AsyncClient) -> None:
    response = await client.get(ME)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_alg_none_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = base64.urlsafe_b64encode(json.dumps(_claims(settings, user.id)).encode())
    token = f"{header.decode().rstrip('=')}.{payload.decode().rstrip('=')}."
    assert await _status(client, token) == 401


async def test_token_signed_with_another_key_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    token = jwt.encode(_claims(settings, user.id), "another-key-" * 4, algorithm="HS256")
    assert await _status(client, token) == 401


async def test_expired_token_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    past = int(time.time()) - 3600
    token = jwt.encode(
        _claims(settings, user.id, iat=past - 900, exp=past), TEST_SECRET, algorithm="HS256"
    )
    assert await _status(client, token) == 401


async def test_wrong_issuer_or_audience_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    for override in ({"iss": "someone-else"}, {"aud": "another-api"}):
        token = jwt.encode(_claims(settings, user.id, **override), TEST_SECRET, algorithm="HS256")
        assert await _status(client, token) == 401


async def test_wrong_type_or_missing_claim_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    for override in ({"typ": "refresh"}, {"jti": None}, {"sub": "not-a-number"}):
        token = jwt.encode(_claims(settings, user.id, **override), TEST_SECRET, algorithm="HS256")
        assert await _status(client, token) == 401


async def test_refresh_token_used_as_access_token_is_refused(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    pair = await tokens(client, user.email)
    assert await _status(client, pair["refresh_token"]) == 401


async def test_tampered_payload_is_refused(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    admin = await factory.user(superuser=True)
    pair = await tokens(client, user.email)
    header, payload, signature = pair["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(admin.id)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert await _status(client, f"{header}.{forged}.{signature}") == 401


async def test_token_of_a_deleted_user_is_refused(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    token = jwt.encode(_claims(settings, 999_999), TEST_SECRET, algorithm="HS256")
    assert await _status(client, token) == 401


async def test_checking_a_token_costs_no_sql_once_cached(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    headers = factory.headers(user)
    assert (await client.get("/api/v1/permissions", headers=headers)).status_code == 200

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            assert (await client.get("/api/v1/permissions", headers=headers)).status_code == 200
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert statements == []


async def test_an_authenticated_request_costs_one_redis_round_trip(
    client: AsyncClient, factory: Factory
) -> None:
    """The rate limiter's script also reads the token's state: no second round trip."""
    user = await factory.user(permissions=["processes:read"])
    headers = factory.headers(user)
    assert (await client.get("/api/v1/permissions", headers=headers)).status_code == 200
    with count_redis_commands() as commands:
        for _ in range(3):
            assert (await client.get("/api/v1/permissions", headers=headers)).status_code == 200
    assert commands == ["EVALSHA"] * 3


async def test_without_rate_limits_the_token_state_is_read_on_its_own(
    client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    headers = factory.headers(user)
    async with client_with(RATE_LIMIT_ENABLED=False) as unlimited:
        assert (await unlimited.get("/api/v1/permissions", headers=headers)).status_code == 200
        with count_redis_commands() as commands:
            assert (await unlimited.get("/api/v1/permissions", headers=headers)).status_code == 200
    assert commands == ["MGET"]
