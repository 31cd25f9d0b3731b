"""Migrations applied to a database full of data lose nothing.

Each table is fingerprinted (row count and an md5 of every row, in key order) before and
after. The empty-database round trip lives in tests/core/test_migrations.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core import migrations
from app.core.config import Settings
from app.core.database import (
    async_url,
    create_database_if_missing,
    create_engine,
    create_sessionmaker,
    drop_database,
)
from app.domains.auth.context import AuthContext
from app.seed import seed_demo

pytestmark = pytest.mark.slow

Fingerprint = dict[str, tuple[int, str]]


@pytest.fixture
async def empty_database_url(database_url: str) -> AsyncIterator[str]:
    name = f"pa_migrate_data_{uuid.uuid4().hex[:8]}"
    url = async_url(database_url).set(database=name).render_as_string(hide_password=False)
    await create_database_if_missing(url)
    yield url
    await drop_database(url)


async def _migrate(action: str, url: str, revision: str) -> None:
    # Alembic runs its own event loop: not on this one.
    if action == "upgrade":
        await asyncio.to_thread(migrations.upgrade, url, revision)
    else:
        await asyncio.to_thread(migrations.downgrade, url, revision)


async def _columns(connection: AsyncConnection) -> dict[str, list[str]]:
    rows = await connection.execute(
        text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'alembic_version' "
            "ORDER BY table_name, ordinal_position"
        )
    )
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    return columns


async def _fingerprint(url: str, columns: dict[str, list[str]] | None = None) -> Fingerprint:
    """Per table: row count and md5 of the rows (only `columns` of each, when given)."""
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            present = await _columns(connection)
            chosen = columns or present
            fingerprint: Fingerprint = {}
            for table, names in sorted(chosen.items()):
                row = ", ".join(f'"{name}"' for name in names)
                count, digest = (
                    await connection.execute(
                        text(
                            f"SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) "  # noqa: S608 (names come from the catalog)
                            f'FROM (SELECT ROW({row})::text AS r FROM "{table}") AS rows'
                        )
                    )
                ).one()
                fingerprint[table] = (count, digest)
            return fingerprint
    finally:
        await engine.dispose()


async def _indexes(url: str) -> set[str]:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            names = await connection.scalars(
                text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
            )
            return set(names.all())
    finally:
        await engine.dispose()


async def test_demo_data_survives_downgrading_and_reapplying_the_latest_migration(
    empty_database_url: str, settings: Settings, redis: Redis
) -> None:
    url = empty_database_url
    await _migrate("upgrade", url, "head")
    engine = create_engine(settings, url)
    try:
        report = await seed_demo(create_sessionmaker(engine), AuthContext.build(settings, redis))
    finally:
        await engine.dispose()
    assert report.processes > 0
    seeded, indexes = await _fingerprint(url), await _indexes(url)

    await _migrate("downgrade", url, "-1")
    downgraded = await _fingerprint(url)
    # A table the latest migration adds goes with its downgrade: the seed leaves it empty.
    assert all(seeded[table][0] == 0 for table in seeded.keys() - downgraded.keys())
    assert downgraded == {table: seeded[table] for table in downgraded}
    assert await _indexes(url) < indexes

    await _migrate("upgrade", url, "head")
    assert await _fingerprint(url) == seeded
    assert await _indexes(url) == indexes


IDENTITY_DATA = [
    "INSERT INTO roles (name, permissions) SELECT 'Role ' || g, "
    "ARRAY['processes:read', 'users:read'] FROM generate_series(1, 6) AS g",
    "INSERT INTO users (email, full_name, job_title, password_hash, is_superuser, is_active) "
    "SELECT 'user' || g || '@example.com', 'User ' || g, "
    "CASE WHEN g % 3 = 0 THEN NULL ELSE 'Job ' || g END, 'argon2-hash-' || g, g = 1, g % 7 <> 0 "
    "FROM generate_series(1, 60) AS g",
    "INSERT INTO user_roles (user_id, role_id) "
    "SELECT u.id, r.id FROM users u JOIN roles r ON (u.id + r.id) % 4 = 0",
    "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, revoked_at) "
    "SELECT id, gen_random_uuid(), md5(email) || md5(full_name), now() + interval '30 days', "
    "CASE WHEN id % 2 = 0 THEN now() END FROM users",
    "INSERT INTO audit_events (actor_id, action, entity_type, entity_id, changes, request_id) "
    "SELECT 1, 'create', 'user', id, jsonb_build_object('email', jsonb_build_array(NULL, email)), "
    "'req-' || id FROM users",
]


async def test_data_written_at_the_first_revision_survives_every_later_migration(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    await _migrate("upgrade", url, "0001")
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:
            for statement in IDENTITY_DATA:
                await connection.execute(text(statement))
            first_columns = await _columns(connection)
    finally:
        await engine.dispose()
    before = await _fingerprint(url, first_columns)
    assert before["users"][0] == 60

    await _migrate("upgrade", url, "head")

    assert await _fingerprint(url, first_columns) == before
