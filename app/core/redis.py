"""The process's Redis client, and which of its errors mean "unreachable" or "saturated"."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
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
    """A pool that waits for a free connection, and ends a wait that runs out distinctly.

    While nobody waits and a connection is free, it takes and returns connections as the
    plain pool does: BlockingConnectionPool's condition and wait timer cost about a fifth
    of a GET's client-side instructions (docs/benchmarks.md, change 16). Only when the
    pool is full do callers queue on the condition, and then releases notify them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiting = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if not self._waiting and self.can_get_connection():
            free: AbstractConnection = await ConnectionPool.get_connection(self)  # type: ignore[no-untyped-call]
            return free
        self._waiting += 1
        try:
            connection: AbstractConnection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as error:
            # redis-py 8 reports the wait running out as a ConnectionError raised from the
            # timeout; a failed connect never has a TimeoutError as its cause.
            if isinstance(error.__cause__, TimeoutError):
                raise RedisPoolExhausted("No pooled Redis connection became free.") from error
            raise
        finally:
            self._waiting -= 1
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        if self._waiting:
            await super().release(connection)
        else:
            await ConnectionPool.release(self, connection)


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
