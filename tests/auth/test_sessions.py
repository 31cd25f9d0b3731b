"""Refresh rotation, theft detection, logout, logout-all, password change, deactivation."""

from __future__ import annotations

import asyncio

from httpx import AsyncClient

from tests.auth.helpers import bearer, login, tokens
from tests.conftest import ClientFactory
from tests.factories import PASSWORD, Factory

ME = "/api/v1/users/me"
NEW_PASSWORD = "a brand new passphrase"


async def _refresh(client: AsyncClient, refresh_token: str) -> tuple[int, dict[str, object]]:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
    return response.status_code, response.json()


async def test_refresh_rotates_the_pair(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    first = await tokens(client, user.email)
    status, second = await _refresh(client, first["refresh_token"])
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get(ME, headers=bearer(str(second["access_token"])))).status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_family(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    first = await tokens(client, user.email)
    _, second = await _refresh(client, first["refresh_token"])
    status, body = await _refresh(client, first["refresh_token"])  # the thief, or the victim
    assert status == 401
    assert body["status"] == 401
    # The legitimate holder's newer token is revoked too: the family is gone.
    status, _ = await _refresh(client, str(second["refresh_token"]))
    assert status == 401


async def test_unknown_refresh_token_answers_401(client: AsyncClient) -> None:
    status, _ = await _refresh(client, "not-a-token")
    assert status == 401


async def test_concurrent_refreshes_of_one_token_let_at_most_one_through(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    pair = await tokens(client, user.email)
    results = await asyncio.gather(*(_refresh(client, pair["refresh_token"]) for _ in range(8)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) <= 1
    assert all(status in (200, 401) for status in statuses)


async def test_logout_stops_the_access_token_at_once_and_revokes_the_family(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    pair = await tokens(client, user.email)
    headers = bearer(pair["access_token"])
    # A success first: nothing read for it (token cache, the rate limiter's shared read)
    # may let the token through after the logout.
    assert (await client.get(ME, headers=headers)).status_code == 200
    response = await client.post("/api/v1/auth/logout", headers=headers)
    assert response.status_code == 204
    assert (await client.get(ME, headers=headers)).status_code == 401
    status, _ = await _refresh(client, pair["refresh_token"])
    assert status == 401


async def test_logout_leaves_other_sessions_alone(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    laptop = await tokens(client, user.email)
    phone = await tokens(client, user.email)
    await client.post(
        "/api/v1/auth/logout",
        headers=bearer(laptop["access_token"]),
        json={"refresh_token": laptop["refresh_token"]},
    )
    assert (await client.get(ME, headers=bearer(phone["access_token"]))).status_code == 200
    status, _ = await _refresh(client, phone["refresh_token"])
    assert status == 200


async def test_logout_all_ends_every_session(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    laptop = await tokens(client, user.email)
    phone = await tokens(client, user.email)
    response = await client.post("/api/v1/auth/logout-all", headers=bearer(phone["access_token"]))
    assert response.status_code == 204
    for pair in (laptop, phone):
        assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 401
        status, _ = await _refresh(client, pair["refresh_token"])
        assert status == 401
    # A new login works at once.
    fresh = await tokens(client, user.email)
    assert (await client.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200


async def test_password_change_ends_every_other_session(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    laptop = await tokens(client, user.email)
    phone = await tokens(client, user.email)
    response = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(phone["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    assert (await client.get(ME, headers=bearer(laptop["access_token"]))).status_code == 401
    assert (await _refresh(client, laptop["refresh_token"]))[0] == 401
    assert (await client.get(ME, headers=bearer(phone["access_token"]))).status_code == 200
    assert (await _refresh(client, phone["refresh_token"]))[0] == 200
    assert (await login(client, user.email)).status_code == 401
    assert (await login(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_password_change_needs_the_current_password(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    response = await client.post(
        "/api/v1/users/me/password",
        headers=factory.headers(user),
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 422
    assert (await login(client, user.email)).status_code == 200


async def test_password_change_enforces_the_length_policy(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    response = await client.post(
        "/api/v1/users/me/password",
        headers=factory.headers(user),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert response.status_code == 422


async def test_deactivating_a_user_ends_their_sessions_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    user = await factory.user()
    pair = await tokens(client, user.email)
    response = await client.patch(
        f"/api/v1/users/{user.id}", headers=factory.headers(admin), json={"is_active": False}
    )
    assert response.status_code == 200
    assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 401
    assert (await _refresh(client, pair["refresh_token"]))[0] == 401
    assert (await login(client, user.email)).status_code == 401


async def test_permission_changes_apply_on_the_next_request(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.user(superuser=True)
    role = await factory.role(permissions=["roles:read"])
    user = await factory.user(roles=[role])
    headers = factory.headers(user)
    assert (await client.get("/api/v1/roles", headers=headers)).status_code == 200

    response = await client.patch(
        f"/api/v1/roles/{role.id}", headers=factory.headers(admin), json={"permissions": []}
    )
    assert response.status_code == 200
    assert (await client.get("/api/v1/roles", headers=headers)).status_code == 403

    await client.patch(
        f"/api/v1/users/{user.id}", headers=factory.headers(admin), json={"role_ids": []}
    )
    other = await factory.role(permissions=["roles:read"])
    await client.patch(
        f"/api/v1/users/{user.id}", headers=factory.headers(admin), json={"role_ids": [other.id]}
    )
    assert (await client.get("/api/v1/roles", headers=headers)).status_code == 200


async def test_reusing_a_refresh_token_stops_every_access_token_of_its_family_at_once(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    first = await tokens(client, user.email)
    other_session = await tokens(client, user.email)
    status, second = await _refresh(client, first["refresh_token"])
    assert status == 200
    family_access = [bearer(first["access_token"]), bearer(str(second["access_token"]))]
    for headers in family_access:
        assert (await client.get(ME, headers=headers)).status_code == 200

    status, _ = await _refresh(client, first["refresh_token"])

    assert status == 401
    for headers in family_access:
        assert (await client.get(ME, headers=headers)).status_code == 401
    other = bearer(other_session["access_token"])
    assert (await client.get(ME, headers=other)).status_code == 200
    assert (await _refresh(client, other_session["refresh_token"]))[0] == 200


async def test_logout_stops_the_older_access_tokens_of_the_session_too(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    first = await tokens(client, user.email)
    _, second = await _refresh(client, first["refresh_token"])
    older, current = bearer(first["access_token"]), bearer(str(second["access_token"]))
    assert (await client.get(ME, headers=older)).status_code == 200

    assert (await client.post("/api/v1/auth/logout", headers=current)).status_code == 204

    assert (await client.get(ME, headers=older)).status_code == 401
    assert (await client.get(ME, headers=current)).status_code == 401


async def test_a_reused_refresh_token_revokes_its_family_even_while_redis_is_unreachable(
    client: AsyncClient, client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user()
    first = await tokens(client, user.email)
    _, second = await _refresh(client, first["refresh_token"])
    async with client_with(redis_url="redis://127.0.0.1:1/0") as cut_off:
        status, _ = await _refresh(cut_off, first["refresh_token"])
    assert status == 401
    assert (await _refresh(client, str(second["refresh_token"])))[0] == 401
