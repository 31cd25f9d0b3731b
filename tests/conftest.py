"""Test fixtures: one migrated database per test process, real Redis, the app over ASGI.

The PostgreSQL server is `TEST_DATABASE_URL` (default: 127.0.0.1:5432 as postgres); when
nothing is configured and nothing answers there, the embedded server is used, so the suite
passes on a machine with nothing but Python. Redis likewise (`TEST_REDIS_URL`).
Each test process (pytest-xdist worker) gets its own database and Redis key prefix;
tables are truncated and keys deleted after every test, so tests pass in any order.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core import migrations
from app.core.config import PROJECT_ROOT, Environment, Settings
from app.core.database import (
    async_url,
    create_database_if_missing,
    create_engine,
    create_sessionmaker,
    drop_database,
)
from app.core.embedded import local_or_embedded_postgres, local_or_embedded_redis
from app.domains.auth.context import AuthContext
from app.main import create_app
from app.models import Base
from tests.factories import Factory

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
DATA_DIR = PROJECT_ROOT / ".data" / "test"


def _server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or local_or_embedded_postgres(DATA_DIR)


def _redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL") or local_or_embedded_redis(DATA_DIR)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database for this test process, migrated by Alembic to head."""
    name = f"pa_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    url = async_url(_server_url()).set(database=name).render_as_string(hide_password=False)
    asyncio.run(create_database_if_missing(url))
    migrations.upgrade(url)
    yield url
    asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _redis_url()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return make_settings(database_url=database_url, redis_url=redis_url)


def make_settings(**overrides: Any) -> Settings:
    """Test settings: small pools, a per-process Redis prefix, nothing read from `.env`."""
    values: dict[str, Any] = {
        "environment": Environment.TEST,
        "secret_key": TEST_SECRET,
        "redis_key_prefix": f"pa-test:{_worker()}:{uuid.uuid4().hex[:8]}:",
        "db_pool_size": 5,
        "db_max_overflow": 10,
        "log_json": True,
        # Cheap argon2 parameters: the tests exercise the flow, not the work factor.
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 64,
        "password_hash_parallelism": 1,
        "password_hash_concurrency": 4,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def session(
    sessionmaker: async_sessionmaker[AsyncSession], clean: None
) -> AsyncIterator[AsyncSession]:
    """A session for arranging data directly; commit what the API should see."""
    async with sessionmaker() as session:
        yield session


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    assert settings.redis_url is not None
    client = Redis.from_url(settings.redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        yield manager.app  # type: ignore[misc]


@pytest.fixture
async def client(app: FastAPI, clean: None) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


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


_TABLES = ", ".join(f'"{table.name}"' for table in reversed(Base.metadata.sorted_tables))


@pytest.fixture
async def clean(engine: AsyncEngine, redis: Redis, settings: Settings) -> AsyncIterator[None]:
    """Leave no rows and no Redis keys behind for the next test."""
    yield
    if _TABLES:
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture(scope="session")
async def auth(settings: Settings, redis: Redis) -> AuthContext:
    """The same toolkit the app builds, for minting tokens and hashing in arrangements."""
    return AuthContext.build(settings, redis)


@pytest.fixture
def factory(session: AsyncSession, auth: AuthContext) -> Factory:
    return Factory(session, auth)
