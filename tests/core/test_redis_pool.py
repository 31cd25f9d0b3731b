"""The bounded Redis pool: a full pool queues callers fairly and loses no wake-up."""

from __future__ import annotations

import asyncio

import pytest

from app.core.config import Settings
from app.core.redis import RedisPoolExhausted, create_redis
from tests.conftest import make_settings


async def test_a_full_pool_serves_every_queued_caller_on_few_connections(
    settings: Settings,
) -> None:
    redis = create_redis(make_settings(redis_url=settings.redis_url, redis_max_connections=3))
    key = f"{settings.redis_key_prefix}empty-list"
    try:
        # Each BLPOP holds its connection for 20 ms: 60 callers on 3 connections must queue.
        answers = await asyncio.gather(*(redis.blpop([key], timeout=0.02) for _ in range(60)))
        assert answers == [None] * 60
        pool = redis.connection_pool
        assert len(pool._in_use_connections) == 0
        assert len(pool._available_connections) <= 3
    finally:
        await redis.aclose()


async def test_a_wait_that_outlasts_the_pool_timeout_is_pool_exhaustion(
    settings: Settings,
) -> None:
    redis = create_redis(
        make_settings(
            redis_url=settings.redis_url, redis_max_connections=1, redis_pool_timeout=0.05
        )
    )
    key = f"{settings.redis_key_prefix}empty-list"
    try:
        holder = asyncio.create_task(redis.blpop([key], timeout=0.5))
        await asyncio.sleep(0.05)
        with pytest.raises(RedisPoolExhausted):
            await redis.get(key)
        assert await holder is None
        assert await redis.get(key) is None  # the pool works again once the holder is done
    finally:
        await redis.aclose()
