"""The oldest Redis the service runs on (docs/operations.md), checked before serving."""

from __future__ import annotations

import re

from redis import Redis

OLDEST_SUPPORTED_REDIS = (6, 2)


class RedisTooOld(RuntimeError):
    """The Redis server is older than the oldest version the service supports."""


def parse_redis_version(text: str) -> tuple[int, ...]:
    """`"6.2.14"` -> (6, 2, 14); a part that is not a number counts as 0."""
    return tuple(
        int(match.group()) if (match := re.match(r"\d+", part)) else 0 for part in text.split(".")
    )


def require_supported_redis(version: str) -> None:
    """Refuse a Redis older than 6.2, naming the version found."""
    if parse_redis_version(version) < OLDEST_SUPPORTED_REDIS:
        oldest = ".".join(str(part) for part in OLDEST_SUPPORTED_REDIS)
        raise RedisTooOld(
            f"Redis {version} is too old: Process Atlas needs Redis {oldest} or newer "
            "(docs/operations.md, Supported versions)"
        )


def check_redis_version(url: str, *, timeout: float) -> str:
    """Ask the server its version (`INFO server`) and refuse one older than 6.2."""
    client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    require_supported_redis(version)
    return version
