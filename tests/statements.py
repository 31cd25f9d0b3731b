"""Counting the SQL statements and Redis commands a piece of work sends (deterministic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def count_statements() -> Iterator[list[str]]:
    """Collect every statement any engine sends while the block runs."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@contextmanager
def count_transaction_commands() -> Iterator[list[str]]:
    """Collect the BEGIN, COMMIT and ROLLBACK every asyncpg connection sends while the block runs.

    SQLAlchemy's events cannot tell these apart: its asyncpg adapter begins a transaction
    lazily, at a connection's first statement, and only outside autocommit.
    """
    commands: list[str] = []
    execute = asyncpg.Connection.execute

    async def record(self: asyncpg.Connection, query: str, *args: Any, **options: Any) -> Any:
        word = query.split(maxsplit=1)[0].rstrip(";").upper() if query.strip() else ""
        if word in {"BEGIN", "COMMIT", "ROLLBACK"}:
            commands.append(word)
        return await execute(self, query, *args, **options)

    asyncpg.Connection.execute = record  # type: ignore[method-assign]
    try:
        yield commands
    finally:
        asyncpg.Connection.execute = execute  # type: ignore[method-assign]


@contextmanager
def count_redis_commands() -> Iterator[list[str]]:
    """Collect the name of every command any asyncio Redis client sends while the block runs."""
    commands: list[str] = []
    send = AsyncRedis.execute_command

    async def record(self: AsyncRedis, *args: Any, **options: Any) -> Any:
        commands.append(str(args[0]).upper())
        return await send(self, *args, **options)

    AsyncRedis.execute_command = record  # type: ignore[method-assign]
    try:
        yield commands
    finally:
        AsyncRedis.execute_command = send  # type: ignore[method-assign]
