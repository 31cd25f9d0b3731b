"""A real `python -m app serve` on a free port, against this test process's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.serving import Server, serve


@pytest.fixture(scope="module")
async def server(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str, redis: Redis
) -> AsyncIterator[Server]:
    with serve(tmp_path_factory.mktemp("e2e"), database_url, redis_url, workers=1) as server:
        yield server
    keys = [key async for key in redis.scan_iter(match=f"{server.key_prefix}*")]
    if keys:
        await redis.delete(*keys)
