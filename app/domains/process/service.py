"""Processes, the hub: their fields, their links, and the lists that filter through them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, TextClause, exists, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import get_or_raise, require_ids, unknown_ids
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.trees import subtree_ids
from app.core.versioning import check_version
from app.domains.audit import service as audit
from app.domains.auth.principal import Principal
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process.exceptions import ProcessNotFound
from app.domains.process.models import (
    Process,
    process_departments,
    process_locations,
    process_resources,
    process_roles,
)
from app.domains.process.schemas import ProcessCreate, ProcessFilters, ProcessUpdate
from app.domains.process.views import LINKS, PAGE_KEYS, PROCESS_BY_ID, PROCESSES_BY_IDS
from app.domains.user.models import User

ENTITY = "process"
AUDITED_FIELDS = ("title", "description", "status", "criticality", "owner_id")
LINK_FIELDS = {f"{name[:-1]}_ids": name for name in LINKS}  # department_ids -> departments

keyset = Keyset(
    Process.id,
    {
        "title": Process.title,
        "status": Process.status,
        "criticality": Process.criticality,
        "created_at": Process.created_at,
        "updated_at": Process.updated_at,
    },
)


IdBound = tuple[int, bool] | None


def _linked_to(
    link: Any, column: str, ids: Select[Any] | int, after: IdBound = None
) -> ColumnElement[bool]:
    target = link.c[column]
    conditions = [
        link.c.process_id == Process.id,
        target.in_(ids) if isinstance(ids, Select) else target == ids,
    ]
    if after is not None:
        # Repeats the cursor's bound on the link's (target, process_id) index, so a page
        # deep in id order starts there instead of walking the link rows before it.
        last_id, descending = after
        conditions.append(
            link.c.process_id < last_id if descending else link.c.process_id > last_id
        )
    return exists().where(*conditions)


def _conditions(filters: ProcessFilters, after: IdBound = None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.q:
        conditions.append(contains(filters.q, Process.title, Process.description))
    if filters.status:
        conditions.append(Process.status.in_(filters.status))
    if filters.criticality:
        conditions.append(Process.criticality.in_(filters.criticality))
    if filters.department_id is not None:
        departments: Select[Any] | int = (
            subtree_ids(Department, filters.department_id)
            if filters.include_descendants
            else filters.department_id
        )
        conditions.append(_linked_to(process_departments, "department_id", departments, after))
    if filters.location_id is not None:
        locations: Select[Any] | int = (
            subtree_ids(Location, filters.location_id)
            if filters.include_descendants
            else filters.location_id
        )
        conditions.append(_linked_to(process_locations, "location_id", locations, after))
    if filters.resource_id is not None:
        conditions.append(_linked_to(process_resources, "resource_id", filters.resource_id, after))
    if filters.role_id is not None:
        conditions.append(_linked_to(process_roles, "role_id", filters.role_id, after))
    if filters.owner_id is not None:
        conditions.append(Process.owner_id == filters.owner_id)
    if filters.created_by_id is not None:
        conditions.append(Process.created_by_id == filters.created_by_id)
    if filters.created_after is not None:
        conditions.append(Process.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(Process.created_at < filters.created_before)
    return conditions


def filtered(filters: ProcessFilters, page: PageParams) -> Select[Any]:
    """The page keys narrowed by `filters`, before `keyset` orders and bounds them."""
    return PAGE_KEYS.where(*_conditions(filters, keyset.leading_id_bound(page)))


def page_statement(filters: ProcessFilters, page: PageParams) -> Select[Any]:
    """The first statement of one page of the list, as `list_processes` runs it."""
    return keyset.apply(filtered(filters, page), page)


async def list_processes(
    session: AsyncSession, *, filters: ProcessFilters, page: PageParams
) -> PageResult[Row[Any]]:
    """A page of processes with their links: two statements whatever the page size."""
    result = await fetch_page(
        session,
        filtered(filters, page),
        keyset,
        page,
        rows=True,
        # Built only when asked for: a statement costs CPU to build even if never run.
        count_statement=(
            select(Process.id).where(*_conditions(filters)) if page.include_total else None
        ),
    )
    if not result.items:
        return result
    ids = [key.id for key in result.items]
    found = {row.id: row for row in await session.execute(PROCESSES_BY_IDS, {"ids": ids})}
    items = [found[process_id] for process_id in ids if process_id in found]
    return PageResult(items, result.next_cursor, result.total)


async def read(session: AsyncSession, process_id: int) -> Row[Any]:
    """One process as the API shows it (one statement)."""
    connection = await session.connection()
    result = await connection.execute(PROCESS_BY_ID, {"process_id": process_id})
    row: Row[Any] | None = result.one_or_none()
    if row is None:
        raise ProcessNotFound(f"Process {process_id} does not exist.")
    return row


async def get_for_update(session: AsyncSession, process_id: int) -> Process:
    """The process row, locked: concurrent writers of one process queue up here."""
    return await get_or_raise(
        session, Process, process_id, not_found=ProcessNotFound, for_update=True
    )


_REPLACE_KIND = """
{kind}_wanted AS (SELECT DISTINCT unnest(CAST(:{field} AS bigint[])) AS id),
{kind}_known AS (
    SELECT wanted.id FROM {kind}_wanted AS wanted JOIN {target} ON {target}.id = wanted.id
),
{kind}_removed AS (
    DELETE FROM {link} WHERE process_id = :process_id
    AND {column} NOT IN (SELECT id FROM {kind}_wanted)
    RETURNING {column} AS id
),
{kind}_added AS (
    INSERT INTO {link} (process_id, {column}) SELECT :process_id, id FROM {kind}_known
    ON CONFLICT DO NOTHING
    RETURNING {column} AS id
)"""

_REPLACE_RESULT = """
SELECT '{field}' AS field, 'removed' AS change, id FROM {kind}_removed
UNION ALL SELECT '{field}', 'added', id FROM {kind}_added
UNION ALL SELECT '{field}', 'missing', id FROM {kind}_wanted
    WHERE id NOT IN (SELECT id FROM {kind}_known)"""


@cache
def _replace_statement(fields: tuple[str, ...]) -> TextClause:
    """One statement that validates the ids of every kind in `fields` and replaces the sets."""
    parts = []
    for field in fields:
        link, target, column = LINKS[LINK_FIELDS[field]]
        names = {"field": field, "kind": LINK_FIELDS[field], "link": link.name}
        parts.append({**names, "target": target.__tablename__, "column": column})
    ctes = ",".join(_REPLACE_KIND.format(**part) for part in parts)
    results = "\nUNION ALL".join(_REPLACE_RESULT.format(**part) for part in parts)
    return text(f"WITH {ctes}\n{results}")


async def replace_links(
    session: AsyncSession, *, process_id: int, links: Mapping[str, Sequence[int]]
) -> dict[str, dict[str, list[int]]]:
    """Make each kind of link in `links` exactly those ids, in one statement.

    Unknown ids of every kind answer one 422 naming them all. Returns the added and
    removed ids of each kind that changed.
    """
    fields = tuple(field for field in LINK_FIELDS if field in links)
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


async def create(session: AsyncSession, *, data: ProcessCreate, actor: Principal) -> Row[Any]:
    """Create a process with its links; unknown ids answer 422 and nothing is written."""
    await _check_owner(session, data.owner_id)
    process = Process(
        title=data.title,
        description=data.description,
        status=data.status,
        criticality=data.criticality,
        owner_id=data.owner_id,
        created_by_id=actor.user_id,
    )
    session.add(process)
    await session.flush()
    changes: dict[str, Any] = audit.created(process, AUDITED_FIELDS)
    wanted = {field: getattr(data, field) for field in LINK_FIELDS if getattr(data, field)}
    changes.update(await replace_links(session, process_id=process.id, links=wanted))
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="create",
        entity_type=ENTITY,
        entity_id=process.id,
        changes=changes,
    )
    return await read(session, process.id)


async def update(
    session: AsyncSession,
    *,
    process: Process,
    data: ProcessUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> Row[Any]:
    """Apply a partial update; each link list present replaces that whole set."""
    check_version(process.version, if_match)
    changes = sent_fields(data, required=("title", "status", "criticality", *LINK_FIELDS))
    link_updates = {field: changes.pop(field) for field in LINK_FIELDS if field in changes}
    if "owner_id" in changes:
        await _check_owner(session, changes["owner_id"])
    audit_changes: dict[str, Any] = audit.apply(process, changes, AUDITED_FIELDS)
    audit_changes.update(await replace_links(session, process_id=process.id, links=link_updates))
    if audit_changes:
        process.updated_at = func.now()  # links changed or fields did: a new version either way
        await session.flush()
        await audit.record(
            session,
            actor_id=actor.user_id,
            action="update",
            entity_type=ENTITY,
            entity_id=process.id,
            changes=audit_changes,
        )
    return await read(session, process.id)


async def delete(
    session: AsyncSession, *, process: Process, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a process; its links go with it."""
    check_version(process.version, if_match)
    before = audit.snapshot(process, AUDITED_FIELDS)
    await session.delete(process)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="delete",
        entity_type=ENTITY,
        entity_id=process.id,
        changes=audit.deleted(before),
    )
