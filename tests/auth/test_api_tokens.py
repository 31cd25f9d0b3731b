"""API tokens through HTTP: shown once, scoped, revoked at once, cheap to check."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from httpx import AsyncClient, Response
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.domains.auth import dependencies as auth_dependencies
from app.domains.auth.context import AuthContext
from app.domains.auth.models import ApiToken
from app.domains.auth.token_state import ApiTokenState, TokenStateStore
from app.domains.user.models import User
from tests.auth.helpers import bearer, tokens
from tests.conftest import ClientFactory
from tests.factories import Factory
from tests.statements import count_redis_commands, count_statements

TOKENS = "/api/v1/api-tokens"
PROCESSES = "/api/v1/processes"
PERMISSIONS = "/api/v1/permissions"


async def _create(
    client: AsyncClient, headers: dict[str, str], permissions: list[str], **extra: Any
) -> Response:
    body = {"name": "nightly export", "permissions": permissions, **extra}
    return await client.post(TOKENS, headers=headers, json=body)


async def _issue(
    client: AsyncClient, headers: dict[str, str], permissions: list[str], **extra: Any
) -> dict[str, Any]:
    response = await _create(client, headers, permissions, **extra)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _token_of(
    client: AsyncClient, factory: Factory, user: User, permissions: list[str]
) -> dict[str, str]:
    """A bearer header carrying a new API token of `user` holding `permissions`."""
    created = await _issue(client, factory.headers(user), permissions)
    return bearer(created["token"])


async def _listed(client: AsyncClient, headers: dict[str, str], **params: Any) -> list[Any]:
    response = await client.get(TOKENS, headers=headers, params=params)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


# --- who may call the routes -------------------------------------------------------------


async def test_the_routes_need_a_signed_in_caller(client: AsyncClient) -> None:
    assert (await _create(client, {}, [])).status_code == 401
    assert (await client.get(TOKENS)).status_code == 401
    assert (await client.delete(f"{TOKENS}/1")).status_code == 401


async def test_any_signed_in_user_manages_their_own_tokens(
    client: AsyncClient, factory: Factory
) -> None:
    """No permission needed: a token carries at most what its owner holds."""
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    assert [t["id"] for t in await _listed(client, factory.headers(user))] == [created["id"]]
    response = await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(user))
    assert response.status_code == 204


async def test_permissions_the_caller_lacks_answer_403_naming_them(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    response = await _create(
        client,
        factory.headers(user),
        ["processes:read", "processes:write", "roles:write"],
    )
    assert response.status_code == 403
    assert response.json()["detail"].endswith("you do not hold: processes:write, roles:write.")
    assert await _listed(client, factory.headers(user)) == []


async def test_someone_elses_token_is_404_unless_superuser(
    client: AsyncClient, factory: Factory
) -> None:
    owner, other = await factory.user(), await factory.user(permissions=["users:write"])
    created = await _issue(client, factory.headers(owner), [])
    refused = await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(other))
    assert refused.status_code == 404
    listing = await client.get(TOKENS, headers=factory.headers(other), params={"user_id": owner.id})
    assert listing.status_code == 403
    assert len(await _listed(client, factory.headers(owner))) == 1


async def test_a_superuser_lists_and_revokes_anyones_tokens(
    client: AsyncClient, factory: Factory
) -> None:
    admin, owner = await factory.user(superuser=True), await factory.user()
    created = await _issue(client, factory.headers(owner), [])
    headers = await _token_of(client, factory, owner, [])
    listed = await _listed(client, factory.headers(admin), user_id=owner.id)
    assert len(listed) == 2
    assert await _listed(client, factory.headers(admin)) == []  # their own: none

    response = await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(admin))
    assert response.status_code == 204
    assert len(await _listed(client, factory.headers(admin), user_id=owner.id)) == 1
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200


# --- what creating answers ----------------------------------------------------------------


async def test_the_token_is_shown_once_and_stored_only_as_its_sha256(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    user = await factory.user(permissions=["processes:read"])
    response = await _create(client, factory.headers(user), ["processes:read"])
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    created = response.json()
    token = created["token"]
    assert token.startswith("pat_")
    assert len(token) >= 4 + 43  # 32 random bytes, URL-safe base64
    assert created["prefix"] == token[:8]
    assert created["user_id"] == user.id
    assert created["permissions"] == ["processes:read"]
    assert created["last_used_at"] is None

    listed = await client.get(TOKENS, headers=factory.headers(user))
    assert token not in listed.text
    (item,) = listed.json()["items"]
    assert "token" not in item
    assert "token_hash" not in item
    assert item["prefix"] == token[:8]

    row = (await session.scalars(select(ApiToken))).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str([getattr(row, c.key) for c in ApiToken.__table__.columns])


async def test_two_tokens_never_share_a_value(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    first = await _issue(client, factory.headers(user), [])
    second = await _issue(client, factory.headers(user), [])
    assert first["token"] != second["token"]


async def test_the_lifetime_defaults_to_the_maximum_and_cannot_exceed_it(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    headers = factory.headers(user)
    created = await _issue(client, headers, [])
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=364) < lifetime <= timedelta(days=365)

    week = await _issue(client, headers, [], expires_in_days=7)
    lifetime = datetime.fromisoformat(week["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=6) < lifetime <= timedelta(days=7)

    for days in (0, -1, 366, "7", 7.5, True):
        assert (await _create(client, headers, [], expires_in_days=days)).status_code == 422
    too_long = await _create(client, headers, [], expires_in_days=366)
    assert too_long.json()["errors"][0]["loc"] == ["body", "expires_in_days"]


async def test_the_maximum_lifetime_is_a_setting(
    client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user()
    async with client_with(API_TOKEN_MAX_DAYS=30) as client:
        refused = await _create(client, factory.headers(user), [], expires_in_days=31)
        created = await _issue(client, factory.headers(user), [])
    assert refused.status_code == 422
    assert "30 days" in refused.json()["detail"]
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29) < lifetime <= timedelta(days=30)


async def test_an_account_holds_a_bounded_number_of_live_tokens(
    client_with: ClientFactory, factory: Factory, session: AsyncSession
) -> None:
    user, other = await factory.user(), await factory.user()
    headers = factory.headers(user)
    async with client_with(API_TOKENS_MAX_PER_USER=3) as client:
        created = [await _issue(client, headers, []) for _ in range(3)]
        refused = await _create(client, headers, [])
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert "3 live API tokens" in refused.json()["detail"]
        # A revoked token frees its place, and so does an expired one.
        revoked = await client.delete(f"{TOKENS}/{created[0]['id']}", headers=headers)
        assert revoked.status_code == 204
        await _issue(client, headers, [])
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == created[1]["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
        await _issue(client, headers, [])
        assert (await _create(client, headers, [])).status_code == 409
        # Each account has its own bound.
        await _issue(client, factory.headers(other), [])


async def test_concurrent_creations_never_pass_the_bound(
    client_with: ClientFactory, factory: Factory, session: AsyncSession
) -> None:
    user = await factory.user()
    async with client_with(API_TOKENS_MAX_PER_USER=3) as client:
        answers = await asyncio.gather(
            *(_create(client, factory.headers(user), []) for _ in range(12))
        )
    assert sorted(answer.status_code for answer in answers) == [201] * 3 + [409] * 9
    held = await session.scalars(select(ApiToken.id).where(ApiToken.user_id == user.id))
    assert len(held.all()) == 3


async def test_unknown_permissions_and_bad_names_answer_422(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(superuser=True)
    headers = factory.headers(user)
    assert (await _create(client, headers, ["processes:delete"])).status_code == 422
    bad_names = [{"name": ""}, {"name": " "}, {"name": "x" * 101}]
    for body in bad_names:
        response = await client.post(TOKENS, headers=headers, json={"permissions": [], **body})
        assert response.status_code == 422
    response = await client.post(TOKENS, headers=headers, json={"name": "no list"})
    assert response.status_code == 422
    extra = await _create(client, headers, [], token="pat_chosen-by-me")
    assert extra.status_code == 422


# --- using a token --------------------------------------------------------------------------


async def test_a_token_works_on_a_normal_route_within_its_own_permissions(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read", "processes:write"])
    headers = await _token_of(client, factory, user, ["processes:read"])
    listed = await client.get(PROCESSES, headers=headers)
    assert listed.status_code == 200, listed.text
    # Its owner may write; the token may not.
    created = await client.post(PROCESSES, headers=headers, json={"title": "Not by this token"})
    assert created.status_code == 403
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["id"] == user.id


async def test_a_superusers_token_is_no_superuser(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    headers = await _token_of(client, factory, admin, ["processes:read"])
    assert (await client.get(PROCESSES, headers=headers)).status_code == 200
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403


async def test_made_up_tokens_answer_401(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    real = (await _issue(client, factory.headers(user), []))["token"]
    for token in ("pat_", "pat_" + "A" * 43, real[:-1], real + "x", "PAT_" + real[4:]):
        response = await client.get(PERMISSIONS, headers=bearer(token))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_revoked_mid_use_is_refused_on_the_next_request(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    created = await _issue(client, factory.headers(user), ["processes:read"])
    headers = bearer(created["token"])
    # Used until it is cached in Redis and known to this worker: the fast path.
    for _ in range(3):
        assert (await client.get(PROCESSES, headers=headers)).status_code == 200

    revoked = await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(user))
    assert revoked.status_code == 204

    refused = await client.get(PROCESSES, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The API token is invalid, expired or revoked."
    assert (await client.get(PROCESSES, headers=headers)).status_code == 401
    assert await _listed(client, factory.headers(user)) == []
    again = await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(user))
    assert again.status_code == 404


async def test_concurrent_revocations_of_one_token_give_one_204(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    created = await _issue(client, factory.headers(admin), [])
    url = f"{TOKENS}/{created['id']}"
    answers = await asyncio.gather(
        *(client.delete(url, headers=factory.headers(admin)) for _ in range(6))
    )
    assert sorted(a.status_code for a in answers) == [204] + [404] * 5
    trail = await client.get(
        "/api/v1/audit-events",
        headers=factory.headers(admin),
        params={"entity_type": "api_token", "entity_id": created["id"], "action": "update"},
    )
    assert len(trail.json()["items"]) == 1


async def test_a_token_may_revoke_itself(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    headers = bearer(created["token"])
    assert (await client.delete(f"{TOKENS}/{created['id']}", headers=headers)).status_code == 204
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 401


async def test_narrowing_the_owners_roles_narrows_the_token_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    role = await factory.role(permissions=["processes:read", "processes:write"])
    user = await factory.user(roles=[role])
    headers = await _token_of(client, factory, user, ["processes:read", "processes:write"])
    first = await client.post(PROCESSES, headers=headers, json={"title": "Before"})
    assert first.status_code == 201, first.text

    narrowed = await client.patch(
        f"/api/v1/roles/{role.id}",
        headers=factory.headers(admin),
        json={"permissions": ["processes:read"]},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert (await client.post(PROCESSES, headers=headers, json={"title": "After"})).status_code == (
        403
    )
    assert (await client.get(PROCESSES, headers=headers)).status_code == 200

    # Widening the role again gives back only what the token itself lists.
    await client.patch(
        f"/api/v1/roles/{role.id}",
        headers=factory.headers(admin),
        json={"permissions": ["processes:read", "processes:write", "users:read"]},
    )
    assert (await client.post(PROCESSES, headers=headers, json={"title": "Again"})).status_code == (
        201
    )
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403


async def test_a_token_expired_before_its_first_use_is_refused(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == created["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    response = await client.get(PERMISSIONS, headers=bearer(created["token"]))
    assert response.status_code == 401
    assert len(await _listed(client, factory.headers(user))) == 1  # still listed, expired


async def test_a_token_in_use_is_refused_once_it_expires(
    client: AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await factory.user()
    headers = await _token_of(client, factory, user, [])
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200  # cached
    a_year_later = time.time() + 366 * 86400
    monkeypatch.setattr(auth_dependencies, "time", SimpleNamespace(time=lambda: a_year_later))
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 401


# --- the owner's account ends its tokens ---------------------------------------------------


async def test_deactivating_the_owner_ends_their_tokens_for_good(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    headers = bearer(created["token"])
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200

    url = f"/api/v1/users/{user.id}"
    off = await client.patch(url, headers=factory.headers(admin), json={"is_active": False})
    assert off.status_code == 200, off.text
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 401

    # Revoked, not paused: reactivating the account does not bring them back.
    on = await client.patch(url, headers=factory.headers(admin), json={"is_active": True})
    assert on.status_code == 200
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 401
    assert await _listed(client, factory.headers(admin), user_id=user.id) == []
    events = await client.get(
        "/api/v1/audit-events",
        headers=factory.headers(admin),
        params={"entity_type": "api_token", "entity_id": created["id"], "action": "update"},
    )
    (event,) = events.json()["items"]
    assert event["actor_id"] == admin.id
    assert list(event["changes"]) == ["revoked_at"]


async def test_deleting_the_owner_ends_their_tokens(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    admin = await factory.user(superuser=True)
    user = await factory.user()
    headers = await _token_of(client, factory, user, [])
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200

    deleted = await client.delete(f"/api/v1/users/{user.id}", headers=factory.headers(admin))
    assert deleted.status_code == 204, deleted.text
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 401
    assert (await session.scalars(select(ApiToken))).all() == []


async def test_logout_all_revokes_every_token_of_the_user(
    client: AsyncClient, factory: Factory, redis: Redis, settings: Settings
) -> None:
    user = await factory.user()
    other = await factory.user()
    first = await _token_of(client, factory, user, [])
    second = await _token_of(client, factory, user, [])
    others = await _token_of(client, factory, other, [])
    for headers in (first, second, others):
        assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200

    session_headers = bearer((await tokens(client, user.email))["access_token"])
    response = await client.post("/api/v1/auth/logout-all", headers=session_headers)
    assert response.status_code == 204
    assert (await client.get(PERMISSIONS, headers=first)).status_code == 401
    assert (await client.get(PERMISSIONS, headers=second)).status_code == 401
    assert (await client.get(PERMISSIONS, headers=others)).status_code == 200
    # Revoked in PostgreSQL, not merely marked in Redis: they stay refused once Redis forgets.
    keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
    await redis.delete(*keys)
    assert (await client.get(PERMISSIONS, headers=first)).status_code == 401
    late = await _token_of(client, factory, user, [])  # created after: it works
    assert (await client.get(PERMISSIONS, headers=late)).status_code == 200


async def test_a_revoked_token_stays_refused_when_its_cached_copy_is_gone(
    client: AsyncClient, factory: Factory, redis: Redis, settings: Settings
) -> None:
    """Redis forgetting everything (a restart, eviction) brings no token back."""
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    headers = bearer(created["token"])
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200
    await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(user))
    keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
    await redis.delete(*keys)
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 401


# --- what tokens cannot do -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [
        (TOKENS, {"name": "a child", "permissions": []}, "create API tokens"),
        (
            "/api/v1/users/me/password",
            {"current_password": "whatever it is", "new_password": "a brand new passphrase"},
            "change passwords",
        ),
        ("/api/v1/auth/logout", None, "manage sessions"),
        ("/api/v1/auth/logout-all", None, "manage sessions"),
        ("/api/v1/auth/refresh", {"refresh_token": "some refresh token"}, "manage sessions"),
    ],
)
async def test_a_token_cannot_create_tokens_change_passwords_or_manage_sessions(
    client: AsyncClient, factory: Factory, path: str, body: dict[str, Any] | None, action: str
) -> None:
    user = await factory.user(superuser=True)
    headers = await _token_of(client, factory, user, ["users:read", "users:write"])
    response = await client.post(path, headers=headers, json=body)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        f"API tokens cannot {action}; sign in with a password to do that."
    )
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200  # still valid


async def test_a_token_cannot_set_another_users_password(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(permissions=["users:read", "users:write"])
    target = await factory.user()
    headers = await _token_of(client, factory, admin, ["users:read", "users:write"])
    url = f"/api/v1/users/{target.id}"
    stolen = await client.patch(url, headers=headers, json={"password": "taken over, sorry"})
    assert stolen.status_code == 403
    assert stolen.json()["detail"].startswith("API tokens cannot change passwords")
    renamed = await client.patch(url, headers=headers, json={"job_title": "Renamed by a script"})
    assert renamed.status_code == 200  # the rest of user administration works


# --- what a check costs ----------------------------------------------------------------------


async def test_checking_a_token_costs_no_sql_and_one_redis_round_trip(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    headers = await _token_of(client, factory, user, ["processes:read"])
    assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200  # the first sight
    with count_statements() as statements, count_redis_commands() as commands:
        for _ in range(3):
            assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200
    assert statements == []
    assert commands == ["EVALSHA"] * 3


async def test_last_used_at_is_written_at_most_once_a_minute(
    client: AsyncClient, factory: Factory, redis: Redis, settings: Settings, auth: AuthContext
) -> None:
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    headers = bearer(created["token"])
    with count_statements() as statements:
        for _ in range(2):
            assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200
    writes = [s for s in statements if s.startswith("UPDATE api_tokens")]
    assert len(writes) == 1
    (listed,) = await _listed(client, factory.headers(user))
    first_use = datetime.fromisoformat(listed["last_used_at"])
    assert abs(first_use - datetime.now(UTC)) < timedelta(minutes=1)

    # Another worker that read "no recent use" just before this one wrote loses the race:
    # the gate is one SET NX in Redis, shared by every worker.
    assert await auth.token_state.claim_api_token_use(_hash(created["token"])) is False

    # A minute later (the gate's key expires), the next request writes it again.
    await redis.delete(f"{settings.redis_key_prefix}api-token-used:{_hash(created['token'])}")
    with count_statements() as statements:
        assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200
    assert len([s for s in statements if s.startswith("UPDATE api_tokens")]) == 1
    (listed,) = await _listed(client, factory.headers(user))
    assert datetime.fromisoformat(listed["last_used_at"]) > first_use


async def test_requests_that_all_read_no_recent_use_still_write_last_used_at_once(
    client: AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of several workers reading the gate before any wrote: SET NX picks one."""
    user = await factory.user()
    headers = await _token_of(client, factory, user, [])
    parse = TokenStateStore.parse_api_token

    def stale(values: Sequence[bytes | str | None]) -> ApiTokenState:
        return dataclasses.replace(parse(values), used_recently=False)

    monkeypatch.setattr(TokenStateStore, "parse_api_token", staticmethod(stale))
    with count_statements() as statements:
        for _ in range(3):
            assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200
    assert len([s for s in statements if s.startswith("UPDATE api_tokens")]) == 1


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def test_a_token_is_rate_limited_with_its_owners_other_requests(
    client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user()
    async with client_with(RATE_LIMIT_DEFAULT="4/hour") as client:
        created = await client.post(
            TOKENS, headers=factory.headers(user), json={"name": "ci", "permissions": []}
        )
        headers = bearer(created.json()["token"])
        # Its first sight in this worker counts against the address; then against the owner,
        # who has used one request to create it.
        answers = [await client.get(PERMISSIONS, headers=headers) for _ in range(4)]
        session_answer = await client.get(PERMISSIONS, headers=factory.headers(user))
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert [a.headers["x-ratelimit-remaining"] for a in answers[1:]] == ["2", "1", "0"]
    assert session_answer.status_code == 429


async def test_without_redis_an_api_token_check_fails_closed(
    client_with: ClientFactory, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503, as for access tokens: without Redis a revoked token could pass."""
    user = await factory.user()
    async with client_with(RATE_LIMIT_ENABLED=False) as client:
        headers = await _token_of(client, factory, user, [])
        assert (await client.get(PERMISSIONS, headers=headers)).status_code == 200

        async def unreachable(*_: Any) -> None:
            raise RedisConnectionError("Redis is gone")

        monkeypatch.setattr(TokenStateStore, "read_api_token", unreachable)
        monkeypatch.setattr(TokenStateStore, "cached_api_token", unreachable)
        response = await client.get(PERMISSIONS, headers=headers)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


# --- audit -----------------------------------------------------------------------------------


async def test_creating_and_revoking_are_audited_without_the_token(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    user = await factory.user()
    created = await _issue(client, factory.headers(user), [])
    await client.delete(f"{TOKENS}/{created['id']}", headers=factory.headers(admin))
    trail = await client.get(
        "/api/v1/audit-events",
        headers=factory.headers(admin),
        params={"entity_type": "api_token", "entity_id": created["id"]},
    )
    assert trail.status_code == 200, trail.text
    events = {event["action"]: event for event in trail.json()["items"]}
    assert events["create"]["actor_id"] == user.id
    assert events["create"]["changes"]["name"] == [None, "nightly export"]
    assert events["update"]["actor_id"] == admin.id
    assert list(events["update"]["changes"]) == ["revoked_at"]
    assert created["token"] not in trail.text
    assert _hash(created["token"]) not in trail.text
