"""Loading rows by id: one query for one id, one query for a whole set of ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Path
from pydantic import Field, Strict
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.base import ExecutableOption
from starlette.convertors import StringConvertor, register_url_convertor

from app.core.database import MAX_BIGINT, Base
from app.core.errors import Conflict, NotFound, ValidationFailed

ModelT = TypeVar("ModelT", bound=Base)

EntityId = Annotated[int, Path(ge=1, le=MAX_BIGINT, description="The entity's id.")]
"""An id in a path: `/{process_id:id}` (the `id` convertor below), validated as an integer."""

# What a collection's own sub-paths are called (`/processes/export`): never an entity's id.
COLLECTION_ACTIONS = ("export", "import")


class IdConvertor(StringConvertor):
    """A path segment that may be an id: anything but a collection action.

    FastAPI still validates it as an `EntityId` (so `/processes/abc` answers 422), while
    `/processes/export` reaches the export route, and a method it does not allow answers 405.
    """

    regex = rf"(?!(?:{'|'.join(COLLECTION_ACTIONS)})(?:/|$))[^/]+"


register_url_convertor("id", IdConvertor())
StrictId = Annotated[int, Strict(), Field(ge=1, le=MAX_BIGINT)]
"""An id in a JSON body: a JSON integer, never `"7"` or `true` read as one."""
OptionalId = Annotated[int | None, Field(ge=1, le=MAX_BIGINT)]
"""An optional id a list filters by (`?parent_id=7`); absent: no filter."""
MAX_LINKS = 500
IdList = Annotated[
    list[StrictId],
    Field(max_length=MAX_LINKS, description=f"At most {MAX_LINKS} ids; repeats count once."),
]


async def get_or_raise(
    session: AsyncSession,
    model: type[ModelT],
    entity_id: int,
    *,
    not_found: type[NotFound] = NotFound,
    for_update: bool = False,
    options: Sequence[ExecutableOption] = (),
) -> ModelT:
    """The row with `entity_id`, locked when it is about to be written, or `not_found`."""
    statement = select(model).where(model.id == entity_id).options(*options)  # type: ignore[attr-defined]
    if for_update:
        # Writers of one row queue here: If-Match checks and link replacement are then exact.
        statement = statement.with_for_update(of=model)
    entity = (await session.scalars(statement)).one_or_none()
    if entity is None:
        raise not_found(f"{model.__name__} {entity_id} does not exist.")
    return entity


async def missing_ids(
    session: AsyncSession, id_column: InstrumentedAttribute[Any], ids: Iterable[int]
) -> list[int]:
    """The ids among `ids` that have no row (one query, whatever the number of ids)."""
    wanted = set(ids)
    if not wanted:
        return []
    found = set((await session.scalars(select(id_column).where(id_column.in_(wanted)))).all())
    return sorted(wanted - found)


async def require_ids(
    session: AsyncSession, id_column: InstrumentedAttribute[Any], ids: Iterable[int], field: str
) -> None:
    """Raise 422 naming every id in `ids` that does not exist."""
    missing = await missing_ids(session, id_column, ids)
    if missing:
        raise unknown_ids({field: missing})


def unknown_ids(missing: Mapping[str, list[int]]) -> ValidationFailed:
    """The 422 that names every id that does not exist, per body field."""
    errors = [
        {"loc": ["body", field], "msg": "unknown ids", "type": "unknown_ids", "missing": ids}
        for field, ids in missing.items()
    ]
    named = "; ".join(f"{field}: {', '.join(map(str, ids))}" for field, ids in missing.items())
    return ValidationFailed(f"Unknown ids in {named}.", extra={"errors": errors})


async def ensure_unreferenced(
    session: AsyncSession, label: str, references: dict[str, ColumnElement[bool]]
) -> None:
    """409 naming every kind of row that still points at the entity (one query for all)."""
    if not references:
        return
    counts = (
        await session.execute(
            select(
                *(
                    select(func.count()).where(condition).scalar_subquery().label(name)
                    for name, condition in references.items()
                )
            )
        )
    ).one()
    blocking = [f"{count} {name}" for name, count in zip(references, counts, strict=True) if count]
    if blocking:
        raise Conflict(
            f"{label} is still referenced by {', '.join(blocking)}; move or delete those first.",
            extra={"blocked_by": {n: c for n, c in zip(references, counts, strict=True) if c}},
        )
