"""One async engine per process and one session (one transaction) per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, ClassVar

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import BigInteger, DateTime, MetaData, func
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.core.config import Settings

# Stable constraint names, so migrations can address them and errors can be mapped.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        int: BigInteger,
    }


class TimestampMixin:
    """`created_at` and `updated_at` as timestamptz filled by PostgreSQL."""

    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now(), nullable=False
    )


def async_url(url: str) -> URL:
    """Normalise a PostgreSQL URL to the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """Build the process's engine with pool limits and a statement timeout from settings."""
    database_url = url or settings.database_url
    if not database_url:
        raise RuntimeError("DATABASE_URL is not resolved; start through `python -m app serve`")
    server_settings = {"application_name": "process-atlas"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        async_url(database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        echo=settings.db_echo,
        connect_args={
            "server_settings": server_settings,
            "timeout": settings.db_connect_timeout,
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (responses serialise after it)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the handler succeeds, roll back on any error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# scope="function": commit runs before the response is sent, so a failed commit
# reaches the client as an error instead of a 2xx for data that was never written.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def create_database_if_missing(url: str) -> bool:
    """Create the database named in `url` on its server; True when it was created."""
    target = async_url(url)
    name = target.database
    if not name:
        raise ValueError("the database URL names no database")
    connection = await asyncpg.connect(**_asyncpg_params(target.set(database="postgres")))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        await connection.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await connection.close()


async def drop_database(url: str) -> None:
    """Drop the database named in `url`, closing other connections to it."""
    target = async_url(url)
    connection = await asyncpg.connect(**_asyncpg_params(target.set(database="postgres")))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        await connection.close()


def _asyncpg_params(url: URL) -> dict[str, object]:
    host = url.query.get("host") or url.host
    return {
        "user": url.username,
        "password": url.password,
        "host": host,
        "port": url.port,
        "database": url.database,
    }
