"""Migrations are the only way the schema is made: they round-trip and match the models."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import migrations
from app.core.database import async_url, create_database_if_missing, drop_database
from app.models import Base


@pytest.fixture
async def empty_database_url(database_url: str) -> AsyncIterator[str]:
    name = f"pa_migrations_{uuid.uuid4().hex[:8]}"
    url = async_url(database_url).set(database=name).render_as_string(hide_password=False)
    await create_database_if_missing(url)
    yield url
    await drop_database(url)


async def _run(url: str, fn: object) -> object:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    model_tables = set(Base.metadata.tables)
    await _to_thread(migrations.upgrade, empty_database_url)
    assert model_tables <= await _run(empty_database_url, _tables)  # type: ignore[operator]

    await _to_thread(migrations.downgrade, empty_database_url, "base")
    assert await _run(empty_database_url, _tables) == {"alembic_version"}

    await _to_thread(migrations.upgrade, empty_database_url)
    assert model_tables <= await _run(empty_database_url, _tables)  # type: ignore[operator]


async def test_autogenerate_finds_no_difference_between_models_and_migrations(
    database_url: str,
) -> None:
    assert await _run(database_url, _diff) == []


async def _to_thread(fn: object, *args: str) -> None:
    # Alembic's env runs its own event loop, so it cannot run on the test's loop thread.
    import asyncio

    await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]
