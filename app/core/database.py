"""One async engine per process and one session (one transaction) per request."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

import asyncpg
import pydantic_core
from fastapi import Depends, Request
from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    event,
    func,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from app.core.config import Settings

if TYPE_CHECKING:
    from app.core.read_after import ReadContext

logger = logging.getLogger("app.database")

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


MAX_BIGINT = 2**63 - 1


class EntityMixin:
    """The columns every domain table has: identity id, timestamps, author and version.

    `version` is SQLAlchemy's version counter: every UPDATE bumps it and checks the old
    value, and it is what ETags and If-Match compare.
    """

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True, sort_order=-1)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), sort_order=100)
    updated_at: Mapped[datetime] = mapped_column(
        server_default=func.now(), onupdate=func.now(), sort_order=100
    )
    version: Mapped[int] = mapped_column(Integer, server_default="1", sort_order=100)

    @declared_attr
    def created_by_id(cls) -> Mapped[int | None]:  # noqa: N805 (declared_attr takes the class)
        return mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), sort_order=100)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        # eager_defaults: INSERT/UPDATE ... RETURNING fills server-side values in place.
        return {"version_id_col": cls.version, "eager_defaults": True}


def entity_table_args(table: str, *items: Any) -> tuple[Any, ...]:
    """`__table_args__` of an `EntityMixin` table: the mixin's indexes, then `items`.

    (column, id) pairs: keyset pages filtered or sorted by these stay index-only walks.
    """
    return (
        Index(f"ix_{table}_created_at_id", "created_at", "id"),
        Index(f"ix_{table}_created_by_id_id", "created_by_id", "id"),
        *items,
    )


AfterCommit = Callable[[], Awaitable[None]]


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once the request's transaction has committed (never on rollback)."""
    session.info.setdefault("after_commit", []).append(callback)


def trigram_index(table: str, column: str) -> Index:
    """A GIN trigram index: serves case-insensitive `ILIKE '%text%'` search on `column`."""
    return Index(
        f"ix_{table}_{column}_trgm",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
    )


def str_enum(enum_class: type[StrEnum], name: str) -> Enum:
    """A VARCHAR column with a CHECK of the enum's values (new values need no type migration)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


def async_url(url: str) -> URL:
    """Normalise a PostgreSQL URL to the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed


def _unique_statement_name() -> str:
    return f"__pa_{uuid.uuid4().hex}__"


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """Build the process's engine with pool limits and a statement timeout from settings."""
    database_url = url or settings.database_url
    if not database_url:
        raise RuntimeError("DATABASE_URL is not resolved; start through `python -m app serve`")
    server_settings = {"application_name": "process-atlas"}
    connect_args: dict[str, Any] = {
        "server_settings": server_settings,
        "timeout": settings.db_connect_timeout,
    }
    if settings.db_pgbouncer:
        # A server connection serves another client's transaction next: nothing may be
        # cached per connection, and PgBouncer refuses unknown startup parameters, so the
        # statement timeout and parallel workers are set on the database (docs/scaling.md).
        # PgBouncer >= 1.21 with max_prepared_statements tracks protocol-level named
        # statements per client and prepares them on whichever server connection runs
        # them: asyncpg's caches and its per-connection names then stay as they are.
        if not settings.db_pgbouncer_prepared_statements:
            connect_args["statement_cache_size"] = 0
            connect_args["prepared_statement_cache_size"] = 0
            connect_args["prepared_statement_name_func"] = _unique_statement_name
    else:
        server_settings["max_parallel_workers_per_gather"] = str(settings.db_parallel_workers)
        if settings.db_statement_timeout_ms:
            server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    engine = create_async_engine(
        async_url(database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        echo=settings.db_echo,
        connect_args=connect_args,
        # pydantic-core's Rust parser: the JSON that views build (600 documents in a page
        # of 100 processes) decodes 3x faster than with json.loads (docs/benchmarks.md, 14).
        json_deserializer=pydantic_core.from_json,
    )
    if settings.db_pool_pre_ping:
        ping_idle_connections(engine)
    return engine


def reads_in_autocommit(settings: Settings) -> bool:
    """Whether GET requests run in autocommit: each statement then is its own transaction.

    It is one in a READ COMMITTED transaction too (every statement takes a new snapshot
    there), so a read loses nothing, and saves the `BEGIN` and `COMMIT` round trips: about
    a quarter of PostgreSQL's CPU per GET by id (docs/benchmarks.md, change 19; the worker's
    CPU barely moves). Reads that lock rows need a transaction: such a route is marked
    `@reads_primary`.

    Not behind a PgBouncer that forgets prepared statements (`DB_PGBOUNCER` without
    `DB_PGBOUNCER_PREPARED_STATEMENTS`): asyncpg prepares a statement, then executes it, and
    outside a transaction PgBouncer may hand the two steps to different server connections.
    """
    return not settings.db_pgbouncer or settings.db_pgbouncer_prepared_statements


# A connection back in the pool for less than this is not pinged before its next use.
PING_AFTER_IDLE_SECONDS = 5.0


def ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a connection before use when it sat idle; a dead one is replaced, unseen.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and asyncpg's ping is three
    round trips (BEGIN, a query, ROLLBACK): about a fifth of the database work of a GET by
    id. A busy pool hands out connections used moments ago, which have no time to go
    stale; after a server restart the first statement on such a connection fails with a
    disconnect error, and SQLAlchemy then discards every connection of the pool.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _check(dbapi_connection: Any, record: Any, _: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            # The pool closes this connection and checks out another (or a new one).
            raise DisconnectionError("connection found dead at checkout") from error


def create_sessionmaker(
    engine: AsyncEngine, *, autocommit: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (responses serialise after it).

    `autocommit=True` for the sessions of GET requests (see `reads_in_autocommit`).
    """
    if autocommit:
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def release_connection(session: AsyncSession) -> None:
    """End a read-only transaction early, handing its connection back to the pool.

    For a request that next waits on something slow and unrelated to the database (a
    login's argon2 hash): it should not hold a pooled connection meanwhile. The session
    begins a new transaction at its next statement. Refuses sessions with pending writes.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("release_connection() on a session with pending changes")
    await session.commit()


# The scope key of a request's `ReadContext` (app/core/read_after.py), there only with replicas.
READ_CONTEXT = "process_atlas.read_context"
# Requests that read only: autocommit sessions, on a replica when there are replicas.
READ_METHODS = frozenset({"GET", "HEAD"})
_READS_PRIMARY = "__reads_primary__"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def reads_primary(endpoint: Endpoint) -> Endpoint:
    """Mark a GET route that locks rows (`FOR UPDATE`): it runs in a transaction, on the primary."""
    setattr(endpoint, _READS_PRIMARY, True)
    return endpoint


def declares_primary(request: Request) -> bool:
    """True for a request whose route is marked `@reads_primary`."""
    endpoint = getattr(request.scope.get("route"), "endpoint", None)
    return bool(getattr(endpoint, _READS_PRIMARY, False))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: commit when the handler succeeds, roll back on any error.

    With read replicas, the request's `ReadContext` picks the primary or a replica and is
    told of failures and commits; without them that is one dict lookup.
    """
    context: ReadContext | None = request.scope.get(READ_CONTEXT)
    sessionmaker: async_sessionmaker[AsyncSession]
    if context is not None:
        sessionmaker = await context.sessionmaker(request)
    elif request.method in READ_METHODS and not declares_primary(request):
        sessionmaker = request.state.read_sessionmaker
    else:
        sessionmaker = request.state.sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException as error:
            if context is not None:
                context.failed(error)
            if getattr(error, "keep_changes", False):
                # An error that must persist what led to it (a revoked token family).
                await session.commit()
                if context is not None:
                    await context.committed(request)
            else:
                await session.rollback()
            raise
        else:
            await session.commit()
            if context is not None:
                await context.committed(request)
        for callback in session.info.pop("after_commit", []):
            try:
                await callback()
            except Exception:
                logger.exception("after-commit callback failed")


# scope="function": commit runs before the response is sent, so a failed commit
# reaches the client as an error instead of a 2xx for data that was never written.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@asynccontextmanager
async def primary_session(request: Request, session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """`session` when it is the primary's, else a short session of its own on the primary.

    For reads that must see every commit whatever replica the request reads from: the
    authentication's (the account, its permissions, an API token's row). Without replicas
    every session is the primary's, and this adds nothing.
    """
    primary: AsyncEngine = request.state.engine
    bind = session.bind
    # The primary's pool serves its sessions in a transaction and in autocommit alike.
    if isinstance(bind, AsyncEngine) and bind.pool is primary.pool:
        yield session
        return
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as own:
        yield own


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
