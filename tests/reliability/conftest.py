"""Reliability fixtures: apps built with their own settings, a superuser, and problem checks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from redis.asyncio import Redis
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from app.core.security import PasswordHashing, TokenCodec
from app.domains.user.models import User
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory
from tests.reliability.servers import (
    PostgresCluster,
    RedisServer,
    migrated_database,
    running_cluster,
)

PROBLEM = "application/problem+json"


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client of a fresh app built with `settings` (its own engine, pool and Redis client)."""
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


SettingsFactory = Callable[..., Settings]


@pytest.fixture
async def settings_with(
    database_url: str, redis_url: str, redis: Redis
) -> AsyncIterator[SettingsFactory]:
    """`settings_with(db_pool_size=1)`: test settings on this worker's database and Redis."""
    made: list[Settings] = []

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"database_url": database_url, "redis_url": redis_url}
        made.append(make_settings(**{**values, **overrides}))
        return made[-1]

    yield build
    for settings in made:
        keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
async def admin(factory: Factory) -> User:
    return await factory.user(superuser=True, full_name="Ada Admin")


@pytest.fixture
def admin_headers(factory: Factory, admin: User) -> dict[str, str]:
    return factory.headers(admin)


def assert_problem(response: Response, status: int) -> None:
    """`response` is an RFC 9457 problem with `status` and nothing internal in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body = response.json()
    assert body["status"] == status
    assert str(body["type"]).startswith("urn:process-atlas:problem:")
    for leak in ("Traceback", "asyncpg", "sqlalchemy", "psycopg", "redis.exceptions"):
        assert leak not in response.text, response.text


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test process's own, on a spare port."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
async def cluster_database_url(postgres_cluster: PostgresCluster) -> str:
    return await migrated_database(postgres_cluster, "process_atlas")


@pytest.fixture
def cluster(postgres_cluster: PostgresCluster) -> Iterator[PostgresCluster]:
    """The cluster, running when the test starts and again when it ends, whatever it did."""
    if not postgres_cluster.running:
        postgres_cluster.start()
    yield postgres_cluster
    if not postgres_cluster.running:
        postgres_cluster.start()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, stopped at the end whatever the test did."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def add_superuser(database_url: str, settings: Settings) -> dict[str, str]:
    """A superuser in the database at `database_url`; its bearer header (password PASSWORD)."""
    engine = create_async_engine(database_url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            user_id = await connection.scalar(
                User.__table__.insert()
                .values(
                    email=f"admin-{uuid.uuid4().hex[:8]}@example.com",
                    full_name="Ada Admin",
                    is_superuser=True,
                    password_hash=await PasswordHashing(settings).hash(PASSWORD),
                )
                .returning(User.id)
            )
    finally:
        await engine.dispose()
    token, _ = TokenCodec(settings).issue(user_id, uuid.uuid4().hex)
    return {"Authorization": f"Bearer {token}"}
