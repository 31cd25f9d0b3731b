"""Bursts against a small Redis pool: a full pool is back-pressure, never an outage.

Requests wait for a pooled connection (`REDIS_POOL_TIMEOUT`); a wait that runs out answers
503 with `Retry-After`. Only a Redis that cannot be reached lets the rate limiter wave
requests through.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.conftest import ClientFactory
from tests.factories import Factory
from tests.reliability.conftest import SettingsFactory, assert_problem, serve
from tests.reliability.servers import RedisServer

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/refresh"
BURST = 300
AUTH_LIMIT = 60  # per minute: one token back every second


def _unchecked() -> float:
    return REGISTRY.get_sample_value("rate_limiter_errors_total") or 0.0


async def test_a_burst_from_one_address_on_a_small_pool_is_limited_and_spares_other_users(
    client_with: ClientFactory, factory: Factory
) -> None:
    user = await factory.user()
    headers = factory.headers(user)
    unchecked_before = _unchecked()
    async with client_with(
        rate_limit_auth=f"{AUTH_LIMIT}/minute", redis_max_connections=4, redis_pool_timeout=60
    ) as client:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.post(REFRESH, json={"refresh_token": f"stolen-{n}"}) for n in range(BURST)),
            *(client.get(ME, headers=headers) for _ in range(20)),
        )
        elapsed = time.monotonic() - started
    burst, reads = answers[:BURST], answers[BURST:]
    statuses = Counter(answer.status_code for answer in burst)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= AUTH_LIMIT + math.ceil(elapsed), (statuses, elapsed)
    assert all(a.headers["retry-after"] for a in burst if a.status_code == 429)
    assert [read.status_code for read in reads] == [200] * 20
    assert _unchecked() == unchecked_before


@pytest.mark.slow
async def test_a_pool_wait_that_runs_out_answers_503_and_lets_nothing_through_unchecked(
    settings_with: SettingsFactory, redis_server: RedisServer
) -> None:
    settings = settings_with(
        redis_url=redis_server.url,
        redis_max_connections=1,
        redis_pool_timeout=0.2,
        redis_socket_timeout=10,
    )
    admin = Redis.from_url(redis_server.url)
    unchecked_before = _unchecked()
    try:
        async with serve(settings) as client:
            assert (await client.post(REFRESH, json={"refresh_token": "x"})).status_code == 401
            # Redis stays reachable but answers nobody for a second: the one pooled
            # connection is held by the first request, the others wait for it.
            await admin.client_pause(1000)
            answers = await asyncio.gather(
                *(client.post(REFRESH, json={"refresh_token": "x"}) for _ in range(10))
            )
    finally:
        await admin.aclose()
    checked = [a for a in answers if a.status_code == 401]
    refused = [a for a in answers if a.status_code != 401]
    assert all("x-ratelimit-remaining" in a.headers for a in checked)
    assert refused
    for answer in refused:
        assert_problem(answer, 503)
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["detail"] == "The service is saturated; retry shortly."
    assert _unchecked() == unchecked_before
