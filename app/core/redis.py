"""The process's Redis client."""

from __future__ import annotations

from redis.asyncio import Redis

from app.core.config import Settings


def create_redis(settings: Settings, url: str | None = None) -> Redis:
    """A pooled asyncio client with short timeouts, so an outage fails fast."""
    redis_url = url or settings.redis_url
    if not redis_url:
        raise RuntimeError("REDIS_URL is not resolved; start through `python -m app serve`")
    return Redis.from_url(
        redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        health_check_interval=30,
        decode_responses=True,
    )
