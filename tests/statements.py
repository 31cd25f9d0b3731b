"""Counting the SQL statements and Redis commands a piece of work sends (deterministic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
