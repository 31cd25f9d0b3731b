"""Writing processes, the hub: their fields and their links, each write audited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    bindparam,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy import delete as delete_rows
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import require_ids, unknown_ids
from app.domains.audit.service import Audited
from app.domains.auth.principal import Principal
from app.domains.process import queries
from app.domains.process.models import Process
from app.domains.process.queries import LINKS, Link
from app.domains.process.schemas import ProcessCreate, ProcessRead, ProcessUpdate
from app.domains.user.models import User

AUDITED = Audited(
    "process",
    fields=(
        "title",
        "description",
        "status",
        "criticality",
        "owner_id",
        "review_interval_days",
        "last_reviewed_at",
    ),
)

PROCESS_ID = bindparam("process_id", type_=BigInteger)


def _label(name: str) -> ColumnElement[str]:
    # Our own constants (LINKS' keys, the change kinds), written into the cached statement:
    # as bound parameters they cost 12 more binds on every execution.
    return literal_column(f"'{name}'", String)


def _replace_kind(field: str, link: Link) -> list[Select[Any]]:
    """Replace one kind of link with the ids in `field`: its removed, added and unknown ids."""
    table, linked_id = link.table, link.table.c[link.column]
    target = link.target.__table__
    wanted = (
        select(func.unnest(bindparam(field, type_=ARRAY(BigInteger))).label("id"))
        .distinct()
        .cte(f"{link.name}_wanted")
    )
    known = select(wanted.c.id).join(target, target.c.id == wanted.c.id).cte(f"{link.name}_known")
    removed = (
        delete_rows(table)
        .where(table.c.process_id == PROCESS_ID, linked_id.not_in(select(wanted.c.id)))
        .returning(linked_id.label("id"))
        .cte(f"{link.name}_removed")
    )
    added = (
        insert(table)
        .from_select(["process_id", link.column], select(PROCESS_ID, known.c.id))
        .on_conflict_do_nothing()
        .returning(linked_id.label("id"))
        .cte(f"{link.name}_added")
    )
    return [
        select(_label(field).label("field"), _label("removed").label("change"), removed.c.id),
        select(_label(field), _label("added"), added.c.id),
        select(_label(field), _label("missing"), wanted.c.id).where(
            wanted.c.id.not_in(select(known.c.id))
        ),
    ]


@cache
def _replace_statement(fields: tuple[str, ...]) -> CompoundSelect[Any]:
    """One statement that validates the ids of every kind in `fields` and replaces the sets."""
    return union_all(*(part for field in fields for part in _replace_kind(field, LINKS[field])))


async def replace_links(
    session: AsyncSession, *, process_id: int, links: Mapping[str, Sequence[int]]
) -> dict[str, dict[str, list[int]]]:
    """Make each kind of link in `links` exactly those ids, in one statement.

    Unknown ids of every kind answer one 422 naming them all. Returns the added and
    removed ids of each kind that changed.
    """
    fields = tuple(field for field in LINKS if field in links)
    if not fields:
        return {}
    parameters: dict[str, Any] = {field: list(links[field]) for field in fields}
    result = await session.execute(
        _replace_statement(fields), {**parameters, "process_id": process_id}
    )
    changes: dict[str, dict[str, list[int]]] = {
        field: {"added": [], "removed": [], "missing": []} for field in fields
    }
    for field, change, linked_id in result.all():
        changes[field][change].append(linked_id)
    missing = {field: sorted(found["missing"]) for field, found in changes.items()}
    if any(missing.values()):
        raise unknown_ids({field: ids for field, ids in missing.items() if ids})
    return {
        field: {"added": sorted(found["added"]), "removed": sorted(found["removed"])}
        for field, found in changes.items()
        if found["added"] or found["removed"]
    }


async def _check_owner(session: AsyncSession, owner_id: int | None) -> None:
    if owner_id is not None:
        await require_ids(session, User.id, [owner_id], "owner_id")


async def create(session: AsyncSession, *, data: ProcessCreate, actor: Principal) -> ProcessRead:
    """Create a process with its links; unknown ids answer 422 and nothing is written."""
    await _check_owner(session, data.owner_id)
    process = Process(
        title=data.title,
        description=data.description,
        status=data.status,
        criticality=data.criticality,
        owner_id=data.owner_id,
        review_interval_days=data.review_interval_days,
        created_by_id=actor.user_id,
    )
    async with AUDITED.creating(session, process, actor=actor) as change:
        wanted = {field: getattr(data, field) for field in LINKS if getattr(data, field)}
        change.changes.update(await replace_links(session, process_id=process.id, links=wanted))
    return await queries.read(session, process.id)


async def update(
    session: AsyncSession,
    *,
    process: Process,
    data: ProcessUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> ProcessRead:
    """Apply a partial update; each link list present replaces that whole set."""
    async with AUDITED.updating(session, process, actor=actor, if_match=if_match) as change:
        changes = sent_fields(data, required=("title", "status", "criticality", *LINKS))
        links = {field: changes.pop(field) for field in LINKS if field in changes}
        if "owner_id" in changes:
            await _check_owner(session, changes["owner_id"])
        change.apply(changes)
        change.changes.update(await replace_links(session, process_id=process.id, links=links))
    return await queries.read(session, process.id)


async def review(
    session: AsyncSession, *, process: Process, actor: Principal, if_match: list[int] | None
) -> ProcessRead:
    """Mark a process reviewed now: its next review falls due one interval later."""
    async with AUDITED.updating(session, process, actor=actor, if_match=if_match) as change:
        # The transaction's time, as `updated_at` gets it: the two are equal.
        reviewed_at = await session.scalar(select(func.now()))
        change.apply({"last_reviewed_at": reviewed_at})
    return await queries.read(session, process.id)


async def delete(
    session: AsyncSession, *, process: Process, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a process; its links go with it."""
    async with AUDITED.deleting(session, process, actor=actor, if_match=if_match):
        pass
