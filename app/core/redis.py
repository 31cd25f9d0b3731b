"""The process's Redis client, and which of its errors mean "unreachable" or "saturated".

One server (`REDIS_URL`), or the primary a set of sentinels names (`REDIS_SENTINELS`):
either way one bounded pool per worker with the same fast path, short timeouts and no
retries, so an outage or a failover fails fast and is told apart from saturation.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, DefaultParser
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.core.config import Settings


class RedisPoolExhausted(RedisError):
    """No pooled connection came free within `REDIS_POOL_TIMEOUT`: back-pressure, not an outage."""


class NoReplicasError(ResponseError):
    """NOREPLICAS: the primary refuses writes while too few replicas keep up with it.

    `min-replicas-to-write` asks for it (docs/reliability.md, "Redis failover"); redis-py
    has no class of its own for it, and a plain ResponseError would be taken for a bug.
    """


class ErrorParser(DefaultParser):  # type: ignore[misc,valid-type]
    """redis-py's reply parser, with the errors a failover brings classified.

    Two gaps: NOREPLICAS gets a class (above); and Redis 6.2 wraps the error a script's
    `redis.call` meets in a generic one ("Error running script (call to f_...):
    @user_script:1: ... -READONLY You can't write against a read only replica."). Unwrapped,
    a demoted primary answers the rate limiter's script with a ReadOnlyError, on which a
    Sentinel connection drops itself and asks for the new primary, instead of a 500.
    """

    EXCEPTION_CLASSES: ClassVar[dict[str, Any]] = {
        **DefaultParser.EXCEPTION_CLASSES,
        "NOREPLICAS": NoReplicasError,
    }

    @classmethod
    def parse_error(cls, response: str) -> ResponseError:
        if response.startswith("ERR Error running script"):
            inner = response.rpartition(": -")[2]
            code = inner.split(" ", 1)[0]
            if code != "ERR" and code in cls.EXCEPTION_CLASSES:
                response = inner
        error: ResponseError = super().parse_error(response)
        return error


# Redis cannot be reached (refused, reset, timed out, no primary known to the sentinels) or
# cannot take writes (a replica during a failover, memory full, too few replicas in sync):
# the only errors anything fails open on. A full pool is not one of them, nor any other
# error Redis answers (a wrong key type, an unknown command): the first is saturation, the
# second a bug.
REDIS_UNREACHABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    ReadOnlyError,
    OutOfMemoryError,
    NoReplicasError,
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


# How often a Sentinel pool asks the sentinels where the primary is, besides at each connect.
PRIMARY_CHECK_SECONDS = 1.0


class SentinelBoundedPool(BoundedConnectionPool, SentinelConnectionPool):
    """The bounded pool's waits and fast path, on connections to the primary sentinels name.

    SentinelConnectionPool adds no taking or returning of its own: its connections ask the
    sentinels for the primary's address each time they connect, and drop themselves when
    that server has become a replica (READONLY); the pool drops its idle connections when
    the address changes. So it sits under BoundedConnectionPool in the method order, which
    keeps `get_connection` and `release`. Closing the pool also closes the sentinel clients.

    Asking only at connect is not enough: pooled connections stay open, and after a
    switchover or a partition the old primary keeps taking their writes (lost once it is
    made a replica, 10 s later in Redis 6.2). So the pool also asks once a
    PRIMARY_CHECK_SECONDS, in the background, and a connection to a server that is no
    longer the primary is closed when it comes back to the pool.
    """

    sentinel_manager: Sentinel

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        # By keyword: BlockingConnectionPool passes only keywords up to SentinelConnectionPool,
        # and would otherwise make plain connections (its default connection_class).
        super().__init__(
            service_name=service_name,
            sentinel_manager=sentinel_manager,
            connection_class=SentinelManagedConnection,
            **kwargs,
        )
        self._next_check = 0.0
        self._check: asyncio.Task[bool] | None = None

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + PRIMARY_CHECK_SECONDS
            if self._check is None or self._check.done():
                self._check = asyncio.get_running_loop().create_task(self.primary_moved())
        return await super().get_connection(*args, **kwargs)

    async def release(self, connection: AbstractConnection) -> None:
        primary = self.master_address  # (host, port), as the connections were given it
        if primary is not None and (
            getattr(connection, "host", None) != primary[0]
            or getattr(connection, "port", None) != primary[1]
        ):
            await connection.disconnect()
        await super().release(connection)

    async def primary_moved(self, since: Any = None) -> bool:
        """Ask the sentinels where the primary is; True when it is no longer at `since`
        (default: their last answer).

        Idle connections to the old primary are closed at once, busy ones on release.
        Sentinels that cannot say (all down, or the primary down and not yet replaced)
        change nothing: connections find out for themselves.
        """
        before = since or self.master_address
        try:
            now = await self.get_master_address()  # type: ignore[no-untyped-call]
        except RedisError:
            return False
        return before is not None and tuple(now) != tuple(before)

    async def aclose(self) -> None:
        if self._check is not None:
            self._check.cancel()
        try:
            await super().aclose()
        finally:
            await self.sentinel_manager.aclose()


def _sentinel_pool(settings: Settings, options: dict[str, Any]) -> SentinelBoundedPool:
    """A pool on the primary of REDIS_SENTINEL_MASTER, as the sentinels name it."""
    assert settings.redis_sentinel_master
    password = settings.redis_sentinel_password
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        settings.redis_sentinel_addresses,
        # Each question to a sentinel fails fast and is never retried: the next sentinel in
        # the list is asked instead, and a request that finds none answers 503.
        sentinel_kwargs={
            "socket_timeout": settings.redis_socket_timeout,
            "socket_connect_timeout": settings.redis_socket_timeout,
            "retry": Retry(NoBackoff(), 0),
            "username": settings.redis_sentinel_username,
            "password": password.get_secret_value() if password else None,
        },
    )
    primary_password = settings.redis_sentinel_master_password
    return SentinelBoundedPool(
        settings.redis_sentinel_master,
        sentinel,
        username=settings.redis_sentinel_master_username,
        password=primary_password.get_secret_value() if primary_password else None,
        **options,
    )


def create_redis(settings: Settings, url: str | None = None) -> Redis:
    """A client on a bounded pool with short timeouts, so an outage fails fast.

    On `url` or REDIS_URL's server, else on the primary REDIS_SENTINELS name.
    """
    options: dict[str, Any] = {
        "max_connections": settings.redis_max_connections,
        "timeout": settings.redis_pool_timeout,
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_socket_timeout,
        "health_check_interval": 30,
        "decode_responses": True,
        "parser_class": ErrorParser,
    }
    redis_url = url or settings.redis_url
    pool: BoundedConnectionPool
    if redis_url:
        pool = BoundedConnectionPool.from_url(redis_url, **options)
    elif settings.uses_redis_sentinel:
        pool = _sentinel_pool(settings, options)
    else:
        raise RuntimeError("REDIS_URL is not resolved; start through `python -m app serve`")
    return Redis.from_pool(pool)


async def redis_version(settings: Settings) -> str:
    """The version of the server the settings name (`INFO server`), through `create_redis`."""
    redis = create_redis(settings)
    try:
        info = await redis.info("server")
    finally:
        await redis.aclose()
    return str(info["redis_version"])


def primary_address(redis: Redis) -> Any:
    """Where `redis` last found the primary the sentinels name (None: not yet, or no Sentinel)."""
    pool = redis.connection_pool
    return pool.master_address if isinstance(pool, SentinelBoundedPool) else None


async def primary_moved(redis: Redis, since: Any) -> bool:
    """Whether the primary the sentinels name is no longer at `since` (`primary_address`
    read before); always False without Sentinel. The connections of `redis` follow it: idle
    ones are closed now, busy ones on release."""
    pool = redis.connection_pool
    return isinstance(pool, SentinelBoundedPool) and await pool.primary_moved(since)
