"""The process's Redis client, and which of its errors mean "unreachable" or "saturated"."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.config import Settings


class RedisPoolExhausted(RedisError):
    """No pooled connection came free within `REDIS_POOL_TIMEOUT`: back-pressure, not an outage."""


# Redis cannot be reached (refused, reset, timed out) or cannot take writes (a replica during
# a failover, memory full): the only errors anything fails open on. A full pool is not one of
# them, nor any other error Redis answers (a wrong key type, an unknown command): the first
# is saturation, the second a bug.
REDIS_UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ReadOnlyError,
    OutOfMemoryError,
)


class BoundedConnectionPool(BlockingConnectionPool):
    """A pool that waits for a free connection, and ends a wait that runs out distinctly."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        try:
            connection: AbstractConnection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as error:
            # redis-py 8 reports the wait running out as a ConnectionError raised from the
            # timeout; a failed connect never has a TimeoutError as its cause.
            if isinstance(error.__cause__, TimeoutError):
                raise RedisPoolExhausted("No pooled Redis connection became free.") from error
            raise
        return connection


def create_redis(settings: Settings, url: str | None = None) -> Redis:
    """A client on a bounded pool with short timeouts, so an outage fails fast."""
    redis_url = url or settings.redis_url
    if not redis_url:
        raise RuntimeError("REDIS_URL is not resolved; start through `python -m app serve`")
    pool = BoundedConnectionPool.from_url(
        redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        health_check_interval=30,
        decode_responses=True,
    )
    return Redis.from_pool(pool)
