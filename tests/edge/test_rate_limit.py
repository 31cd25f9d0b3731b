"""Rate limits: a shared token bucket per caller and route group, failing open without Redis.

A Redis that answers with an error (a key of the wrong type, a command it lacks) is a bug
to fix, not an outage: a logged 500, wherever the command was sent.
"""

from __future__ import annotations

import time
import uuid

from httpx import AsyncClient, Response
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from app.core.config import Settings
from tests.conftest import ClientFactory
from tests.edge.conftest import LogLines
from tests.factories import Factory

PROBLEM = "application/problem+json"


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_over_the_limit_answers_429_with_retry_after(client_with: ClientFactory) -> None:
    refused_before = _sample("rate_limited_requests_total", {"group": "default"})
    async with client_with(rate_limit_default="3/hour") as client:
        answers = [await client.get("/api/v1/openapi.json") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-limit"] for a in answers] == ["3"] * 4
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    refused = answers[-1]
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "urn:process-atlas:problem:too-many-requests"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    # 3 per hour refills one token every 1200 s.
    assert 1190 <= int(refused.headers["retry-after"]) <= 1200
    assert _sample("rate_limited_requests_total", {"group": "default"}) == refused_before + 1


async def test_probes_and_metrics_are_exempt(client_with: ClientFactory) -> None:
    async with client_with(rate_limit_default="1/hour") as client:
        await client.get("/api/v1/openapi.json")
        assert (await client.get("/api/v1/openapi.json")).status_code == 429
        for path in ("/api/v1/health", "/api/v1/ready", "/metrics"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "x-ratelimit-limit" not in response.headers


async def test_auth_routes_have_their_own_stricter_bucket(client_with: ClientFactory) -> None:
    async with client_with(rate_limit_default="10/hour", rate_limit_auth="2/hour") as client:
        refreshes = [
            await client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
            for _ in range(3)
        ]
        other = await client.get("/api/v1/openapi.json")
    assert [r.status_code for r in refreshes] == [401, 401, 429]
    assert refreshes[0].headers["x-ratelimit-limit"] == "2"
    assert other.status_code == 200
    assert other.headers["x-ratelimit-remaining"] == "9"


async def test_signed_in_callers_are_limited_per_user_not_per_address(
    client_with: ClientFactory, factory: Factory
) -> None:
    alice, bob = await factory.user(), await factory.user()
    async with client_with(rate_limit_default="2/hour") as client:
        alice_answers = [
            await client.get("/api/v1/permissions", headers=factory.headers(alice))
            for _ in range(3)
        ]
        bob_answer = await client.get("/api/v1/permissions", headers=factory.headers(bob))
        anonymous = await client.get("/api/v1/permissions")
    assert [a.status_code for a in alice_answers] == [200, 200, 429]
    assert bob_answer.status_code == 200
    assert anonymous.status_code == 401


async def test_forged_token_is_limited_by_address(client_with: ClientFactory) -> None:
    forged = {"Authorization": "Bearer not-a-token"}
    async with client_with(rate_limit_default="1/hour") as client:
        first = await client.get("/api/v1/permissions", headers=forged)
        second = await client.get("/api/v1/openapi.json")
    assert first.status_code == 401
    assert second.status_code == 429


async def test_x_forwarded_for_is_honoured_only_from_trusted_proxies(
    client_with: ClientFactory,
) -> None:
    one = {"X-Forwarded-For": "198.51.100.1"}
    two = {"X-Forwarded-For": "198.51.100.2"}
    async with client_with(rate_limit_default="1/hour", trusted_proxies="127.0.0.0/8") as client:
        behind_proxy = [
            (await client.get("/api/v1/openapi.json", headers=headers)).status_code
            for headers in (one, two, one)
        ]
    async with client_with(rate_limit_default="1/hour") as client:
        direct = [
            (await client.get("/api/v1/openapi.json", headers=headers)).status_code
            for headers in (one, two)
        ]
    assert behind_proxy == [200, 200, 429]
    assert direct == [200, 429]


async def test_limiter_can_be_switched_off(client_with: ClientFactory) -> None:
    async with client_with(rate_limit_enabled=False, rate_limit_default="1/hour") as client:
        answers = [await client.get("/api/v1/openapi.json") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "x-ratelimit-limit" not in answers[0].headers


async def test_unreachable_redis_lets_requests_through_and_warns_once(
    client_with: ClientFactory, log_lines: LogLines
) -> None:
    errors_before = _sample("rate_limiter_errors_total")
    started = time.perf_counter()
    async with client_with(
        redis_url="redis://127.0.0.1:1/0", rate_limit_default="1/hour"
    ) as client:
        answers = [await client.get("/api/v1/openapi.json") for _ in range(5)]
        missing = await client.get("/api/v1/no-such-route")
        health = await client.get("/api/v1/health")
        needs_token_checks = await client.get(
            "/api/v1/permissions", headers={"Authorization": "Bearer x.y.z"}
        )
    elapsed = time.perf_counter() - started
    assert [a.status_code for a in answers] == [200] * 5
    assert "x-ratelimit-limit" not in answers[0].headers
    assert missing.status_code == 404
    assert health.status_code == 200
    assert needs_token_checks.status_code == 401
    warnings = [r for r in log_lines.records() if r["logger"] == "app.ratelimit"]
    assert len(warnings) == 1
    assert warnings[0]["level"] == "WARNING"
    assert _sample("rate_limiter_errors_total") == errors_before + 7
    # Not a speed target: a refused connection must not wait for a socket timeout (5 s each,
    # 35 s for these 7 requests); the bound leaves a loaded CI machine room.
    assert elapsed < 20


async def test_a_valid_bearer_token_does_not_open_a_fresh_login_bucket(
    client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user()
    guess = {"username": user.email, "password": "not the password at all"}
    async with client_with(rate_limit_auth="2/hour") as client:
        anonymous = [await client.post("/api/v1/auth/token", data=guess) for _ in range(2)]
        with_token = await client.post(
            "/api/v1/auth/token", data=guess, headers=factory.headers(user)
        )
    assert [a.status_code for a in anonymous] == [401, 401]
    assert with_token.status_code == 429


def _assert_logged_500(response: Response, log_lines: LogLines) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:process-atlas:problem:internal-error"
    assert "WRONGTYPE" not in response.text
    errors = [r for r in log_lines.records() if r["level"] == "ERROR"]
    assert len(errors) == 1
    assert "WRONGTYPE" in errors[0]["message"]
    assert "Traceback" in errors[0]["exception"]
    assert "redis.exceptions.ResponseError" in errors[0]["exception"]
    assert not [r for r in log_lines.records() if "unavailable" in r["message"]]


async def test_a_redis_error_answer_in_the_limiter_is_a_logged_500_not_an_outage(
    client_with: ClientFactory, redis: Redis, log_lines: LogLines
) -> None:
    prefix = f"pa-test:{uuid.uuid4().hex}:"
    unchecked_before = _sample("rate_limiter_errors_total")
    async with client_with(rate_limit_default="5/hour", redis_key_prefix=prefix) as client:
        assert (await client.get("/api/v1/openapi.json")).status_code == 200
        [bucket] = [key async for key in redis.scan_iter(match=f"{prefix}ratelimit:*")]
        await redis.delete(bucket)
        await redis.rpush(bucket, "not a bucket")
        response = await client.get("/api/v1/openapi.json")
    _assert_logged_500(response, log_lines)
    assert "x-ratelimit-remaining" not in response.headers
    assert _sample("rate_limiter_errors_total") == unchecked_before


async def test_a_redis_error_answer_in_a_route_is_a_logged_500_not_an_outage(
    client: AsyncClient, factory: Factory, redis: Redis, settings: Settings, log_lines: LogLines
) -> None:
    user = await factory.user()
    await redis.rpush(f"{settings.redis_key_prefix}epoch:{user.id}", "not a counter")
    response = await client.post("/api/v1/auth/logout-all", headers=factory.headers(user))
    _assert_logged_500(response, log_lines)
