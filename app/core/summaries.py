"""The small `{id, name}` and `{id, full_name}` objects responses embed for related rows.

TypedDicts, not models: a page of 100 processes embeds 600 of them, and pydantic
validates a TypedDict in half the time of a model (docs/benchmarks.md, change 9).

The one way a read model embeds a related row: `summaries(session, Location.name, ids)`
reads every summary a page needs in one query. Processes build the same objects in SQL
(`json_summary`, in the statement that reads them; docs/benchmarks.md, change 10).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from typing_extensions import TypedDict


class NamedSummary(TypedDict):
    """A related entity, named."""

    id: int
    name: str


class PersonSummary(TypedDict):
    """A related user: owner, manager or author."""

    id: int
    full_name: str


async def summaries(
    session: AsyncSession, name: InstrumentedAttribute[Any], ids: Iterable[int | None]
) -> dict[int, Any]:
    """`{id: {"id": id, <name's key>: ...}}` for the rows among `ids`, in one query (none if empty).

    `name` is the column shown next to the id: `Department.name` gives NamedSummary,
    `User.full_name` gives PersonSummary.
    """
    wanted = {entity_id for entity_id in ids if entity_id is not None}
    if not wanted:
        return {}
    model = name.class_
    rows = await session.execute(select(model.id, name).where(model.id.in_(wanted)))
    return {row[0]: {"id": row[0], name.key: row[1]} for row in rows}


def json_summary(entity: Any, name: str = "name") -> ColumnElement[Any]:
    """The same object built by PostgreSQL: `{"id": ..., name: ...}`."""
    return func.json_build_object("id", entity.id, name, getattr(entity, name))
