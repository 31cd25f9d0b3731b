"""Redis goes away and comes back: limits fail open, token checks fail closed, both heal.

Each test starts a redis-server of its own on a spare port, so stopping, freezing or
restarting it harms nothing else. Waits are bounded polls.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import pytest
from httpx import AsyncClient, Response

from app.core.config import Settings
from app.domains.user.models import User
from tests.auth.helpers import bearer, tokens
from tests.factories import PASSWORD, Factory
from tests.reliability.conftest import SettingsFactory, assert_problem, serve
from tests.reliability.servers import RedisServer

pytestmark = pytest.mark.slow

ME = "/api/v1/users/me"
RECOVERY_ATTEMPTS = 100  # polls of 0.1 s


@pytest.fixture
def redis_settings(settings_with: SettingsFactory, redis_server: RedisServer) -> Settings:
    # A short socket timeout: a frozen Redis must cost a request well under a second.
    return settings_with(redis_url=redis_server.url, redis_socket_timeout=0.5, ready_timeout=1)


@pytest.fixture
async def user(factory: Factory) -> User:
    return await factory.user(permissions=["processes:read"])


async def _eventually(
    call: Callable[[], Awaitable[Response]], done: Callable[[Response], bool]
) -> Response:
    response = await call()
    for _ in range(RECOVERY_ATTEMPTS):
        if done(response):
            return response
        await asyncio.sleep(0.1)
        response = await call()
    return response


async def _assert_degraded(client: AsyncClient, user: User, access: dict[str, str]) -> None:
    """Redis is unreachable: what a client sees, route by route."""
    checked = await client.get(ME, headers=access)
    assert_problem(checked, 503)
    assert checked.json()["detail"] == "Token checks are unavailable; retry shortly."
    assert "x-ratelimit-remaining" not in checked.headers  # the limiter let it through
    login = await client.post(
        "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
    )
    assert_problem(login, 503)  # failed-login counting needs Redis: no unthrottled guessing
    ready = await client.get("/api/v1/ready")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "up", "redis": "down"}
    assert (await client.get("/api/v1/health")).status_code == 200


async def test_stopped_redis_fails_open_for_limits_closed_for_tokens_then_heals(
    redis_settings: Settings, redis_server: RedisServer, user: User
) -> None:
    async with serve(redis_settings) as app_client:
        pair = await tokens(app_client, user.email)
        access = bearer(pair["access_token"])
        before = await app_client.get(ME, headers=access)
        assert before.status_code == 200
        assert "x-ratelimit-remaining" in before.headers

        await asyncio.to_thread(redis_server.stop)

        await _assert_degraded(app_client, user, access)
        # Refreshing needs only PostgreSQL, and the rate limiter lets it through.
        refreshed = await app_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 200
        assert "x-ratelimit-remaining" not in refreshed.headers

        await asyncio.to_thread(redis_server.start)

        access = bearer(refreshed.json()["access_token"])
        healed = await _eventually(
            lambda: app_client.get(ME, headers=access),
            lambda r: r.status_code == 200 and "x-ratelimit-remaining" in r.headers,
        )
        assert healed.status_code == 200
        assert "x-ratelimit-remaining" in healed.headers
        ready = await app_client.get("/api/v1/ready")
        assert ready.json() == {"status": "ok", "database": "up", "redis": "up"}


async def test_frozen_redis_answers_503_within_the_socket_timeout_and_revocations_hold(
    redis_settings: Settings, redis_server: RedisServer, user: User
) -> None:
    """A Redis that stops answering (SIGSTOP) is a timeout, not a hang; a revoked token
    stays revoked through the outage and after it."""
    async with serve(redis_settings) as app_client:
        revoked = bearer((await tokens(app_client, user.email))["access_token"])
        kept = bearer((await tokens(app_client, user.email))["access_token"])
        assert (await app_client.post("/api/v1/auth/logout", headers=revoked)).status_code == 204
        assert (await app_client.get(ME, headers=revoked)).status_code == 401

        pid = redis_server.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            frozen = await asyncio.wait_for(app_client.get(ME, headers=revoked), 30)
            assert_problem(frozen, 503)
            await _assert_degraded(app_client, user, kept)
        finally:
            os.kill(pid, signal.SIGCONT)

        healed = await _eventually(
            lambda: app_client.get(ME, headers=kept), lambda r: r.status_code == 200
        )
        assert healed.status_code == 200
        assert (await app_client.get(ME, headers=revoked)).status_code == 401
