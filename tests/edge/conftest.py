"""Edge fixtures: apps with other settings, and the log lines a request writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis

from app.core.logging import JsonFormatter
from app.main import create_app
from tests.conftest import make_settings

ClientFactory = Callable[..., AbstractAsyncContextManager[AsyncClient]]


@pytest.fixture
def client_with(database_url: str, redis_url: str, redis: Redis) -> ClientFactory:
    """`async with client_with(RATE_LIMIT_DEFAULT="3/hour") as client:` an app with overrides."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[AsyncClient]:
        values: dict[str, Any] = {"database_url": database_url, "redis_url": redis_url}
        values.update({key.lower(): value for key, value in overrides.items()})
        settings = make_settings(**values)
        app = create_app(settings)
        try:
            async with (
                LifespanManager(app) as manager,
                AsyncClient(
                    transport=ASGITransport(app=manager.app), base_url="http://test"
                ) as client,
            ):
                yield client
        finally:
            keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
            if keys:
                await redis.delete(*keys)

    return build


class LogLines:
    """The JSON lines the app wrote, formatted exactly as on stdout."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [record for record in self.records() if record["logger"] == "app.access"]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield LogLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
