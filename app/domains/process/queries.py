"""Reading processes with everything a response embeds, in a fixed number of statements.

A process as the API shows it is its columns plus its owner, author and four link lists
as JSON built by PostgreSQL, read in one of two ways that give the same rows:

- one process (`PROCESS_BY_ID`): a correlated subquery per embedded list, the cheapest
  plan for a single row (0.40 ms against 0.56 ms);
- a page: which processes are on it first (`PAGE_KEYS`, filtered, ordered and bounded by
  the list's keyset), then those processes whole in a second, prebuilt statement
  (`PROCESSES_BY_IDS`) that aggregates each link list for the whole page at once. Two
  round trips, but half the PostgreSQL time of a correlated subquery per row and kind,
  and no per-request building of a large statement (docs/benchmarks.md, change 10).
  Every item is read from one snapshot; a process deleted between the two statements is
  left out of the page.

Both statements select `_columns(...)`, the fields of `ProcessRead` in API order.

Overdue reviews (`review_overdue=true`) page through their own keyset, which can also sort
by `review_due_at` (the default there: most overdue first); `count_overdue` counts them by
criticality for the metrics.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    Table,
    any_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.core.lookups import get_or_raise
from app.core.metrics import PROCESSES_REVIEW_OVERDUE
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.summaries import json_summary
from app.core.trees import subtree_ids
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process.exceptions import ProcessNotFound
from app.domains.process.models import (
    Criticality,
    Process,
    process_departments,
    process_locations,
    process_resources,
    process_roles,
)
from app.domains.process.schemas import ProcessFilters, ProcessRead
from app.domains.resource.models import Resource
from app.domains.role.models import Role
from app.domains.user.models import User


@dataclass(frozen=True, slots=True)
class Link:
    """One kind of process link."""

    name: str
    """The list a response shows: "departments"."""
    table: Table
    target: Any
    """The linked model: Department."""
    column: str
    """The target's id in `table`, also the list's filter: "department_id"."""


DEPARTMENTS = Link("departments", process_departments, Department, "department_id")
LOCATIONS = Link("locations", process_locations, Location, "location_id")
RESOURCES = Link("resources", process_resources, Resource, "resource_id")
ROLES = Link("roles", process_roles, Role, "role_id")

# The body field that replaces each kind of link, in response order.
LINKS: dict[str, Link] = {
    "department_ids": DEPARTMENTS,
    "location_ids": LOCATIONS,
    "resource_ids": RESOURCES,
    "role_ids": ROLES,
}

SORTABLE: dict[str, InstrumentedAttribute[Any]] = {
    "title": Process.title,
    "status": Process.status,
    "criticality": Process.criticality,
    "created_at": Process.created_at,
    "updated_at": Process.updated_at,
}
keyset = Keyset(Process.id, SORTABLE)
# Only overdue processes sort by their due date: every one has one (keyset values are never
# null), and the partial index on (review_due_at, id) serves both the filter and the order.
overdue_keyset = Keyset(Process.id, {"review_due_at": Process.review_due_at, **SORTABLE})
OVERDUE_DEFAULT_SORT = "review_due_at"

# Which processes are on a page, and where it ends: the id and every sortable column.
PAGE_KEYS: Select[Any] = select(keyset.id_column, *keyset.fields.values())
OVERDUE_PAGE_KEYS: Select[Any] = select(overdue_keyset.id_column, *overdue_keyset.fields.values())

EMPTY_JSON_ARRAY: ColumnElement[Any] = literal_column("'[]'::json")
PAGE_IDS = bindparam("ids", type_=ARRAY(BigInteger))


def _columns(
    *,
    owner: ColumnElement[Any],
    links: Mapping[str, ColumnElement[Any]],
    created_by: ColumnElement[Any],
) -> builtins.list[ColumnElement[Any] | InstrumentedAttribute[Any]]:
    """The fields of `ProcessRead` in API order; the embedded ones as a statement builds them."""
    return [
        Process.id,
        Process.title,
        Process.description,
        Process.status,
        Process.criticality,
        Process.review_interval_days,
        Process.last_reviewed_at,
        Process.review_due_at,
        owner.label("owner"),
        *(links[link.name].label(link.name) for link in LINKS.values()),
        Process.created_at,
        Process.updated_at,
        created_by.label("created_by"),
        Process.version,
    ]


def _summaries(target: Any) -> ColumnElement[Any]:
    """`[{id, name}, ...]` of the linked targets, in id order (an aggregate)."""
    return func.json_agg(aggregate_order_by(json_summary(target), target.id))


def _link_list(link: Link) -> ColumnElement[Any]:
    aggregated = (
        select(_summaries(link.target))
        .select_from(link.table.join(link.target, link.target.id == link.table.c[link.column]))
        .where(link.table.c.process_id == Process.id)
        .scalar_subquery()
    )
    return type_coerce(func.coalesce(aggregated, EMPTY_JSON_ARRAY), JSON)


def _person_of(user_id: InstrumentedAttribute[int | None]) -> ColumnElement[Any]:
    person = select(json_summary(User, "full_name")).where(User.id == user_id).scalar_subquery()
    return type_coerce(person, JSON)


# Built once: building this statement costs more CPU than running it, and reusing one
# object also reuses its memoized cache key.
PROCESS_BY_ID: Select[Any] = select(
    *_columns(
        owner=_person_of(Process.owner_id),
        links={link.name: _link_list(link) for link in LINKS.values()},
        created_by=_person_of(Process.created_by_id),
    )
).where(Process.id == bindparam("process_id"))


def _page_links(link: Link) -> FromClause:
    return (
        select(link.table.c.process_id, _summaries(link.target).label("links"))
        .select_from(link.table.join(link.target, link.target.id == link.table.c[link.column]))
        .where(link.table.c.process_id == any_(PAGE_IDS))
        .group_by(link.table.c.process_id)
        .subquery()
    )


def _person_summary(person: Any) -> ColumnElement[Any]:
    summary = json_summary(person, "full_name")
    return type_coerce(case((person.id.is_(None), None), else_=summary), JSON)


def _processes_by_ids() -> Select[Any]:
    owner, author = aliased(User), aliased(User)
    links = {link.name: _page_links(link) for link in LINKS.values()}
    joined: FromClause = Process.__table__.outerjoin(owner, owner.id == Process.owner_id).outerjoin(
        author, author.id == Process.created_by_id
    )
    for aggregated in links.values():
        joined = joined.outerjoin(aggregated, aggregated.c.process_id == Process.id)
    columns = _columns(
        owner=_person_summary(owner),
        links={
            name: type_coerce(func.coalesce(aggregated.c.links, EMPTY_JSON_ARRAY), JSON)
            for name, aggregated in links.items()
        },
        created_by=_person_summary(author),
    )
    return select(*columns).select_from(joined).where(Process.id == any_(PAGE_IDS))


# The processes of a page (`ids`) as the API shows them, each read whole from one
# snapshot; each link list is aggregated for the whole page in one hash join per kind.
# Built once, like PROCESS_BY_ID.
PROCESSES_BY_IDS: Select[Any] = _processes_by_ids()

_ITEMS = TypeAdapter(builtins.list[ProcessRead])

IdBound = tuple[int, bool] | None


def _linked_to(link: Link, ids: Select[Any] | int, after: IdBound = None) -> ColumnElement[bool]:
    target = link.table.c[link.column]
    conditions = [
        link.table.c.process_id == Process.id,
        target.in_(ids) if isinstance(ids, Select) else target == ids,
    ]
    if after is not None:
        # Repeats the cursor's bound on the link's (target, process_id) index, so a page
        # deep in id order starts there instead of walking the link rows before it.
        last_id, descending = after
        process_id = link.table.c.process_id
        conditions.append(process_id < last_id if descending else process_id > last_id)
    return exists().where(*conditions)


def conditions(
    filters: ProcessFilters, after: IdBound = None
) -> builtins.list[ColumnElement[bool]]:
    """The filters as WHERE conditions (the list's and the export's); `after`: see _linked_to."""
    conditions: builtins.list[ColumnElement[bool]] = []
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
        conditions.append(_linked_to(DEPARTMENTS, departments, after))
    if filters.location_id is not None:
        locations: Select[Any] | int = (
            subtree_ids(Location, filters.location_id)
            if filters.include_descendants
            else filters.location_id
        )
        conditions.append(_linked_to(LOCATIONS, locations, after))
    if filters.resource_id is not None:
        conditions.append(_linked_to(RESOURCES, filters.resource_id, after))
    if filters.role_id is not None:
        conditions.append(_linked_to(ROLES, filters.role_id, after))
    if filters.owner_id is not None:
        conditions.append(Process.owner_id == filters.owner_id)
    if filters.created_by_id is not None:
        conditions.append(Process.created_by_id == filters.created_by_id)
    if filters.created_after is not None:
        conditions.append(Process.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(Process.created_at < filters.created_before)
    if filters.review_overdue:
        conditions.append(Process.review_due_at < func.now())
    elif filters.review_overdue is not None:
        conditions.append(or_(Process.review_due_at.is_(None), Process.review_due_at >= func.now()))
    return conditions


def paging(filters: ProcessFilters, page: PageParams) -> tuple[Keyset, PageParams]:
    """The keyset of the list `filters` select, and `page` with that list's default order.

    Overdue processes come most overdue first unless `sort` says otherwise.
    """
    if filters.review_overdue:
        return overdue_keyset, page if page.sort else replace(page, sort=OVERDUE_DEFAULT_SORT)
    return keyset, page


def _filtered(filters: ProcessFilters, paged: Keyset, page: PageParams) -> Select[Any]:
    """The page keys narrowed by `filters`, before `paged` orders and bounds them."""
    keys = OVERDUE_PAGE_KEYS if paged is overdue_keyset else PAGE_KEYS
    return keys.where(*conditions(filters, paged.leading_id_bound(page)))


def page_statement(filters: ProcessFilters, page: PageParams) -> Select[Any]:
    """The first statement of one page of the list, as `list` runs it."""
    paged, page = paging(filters, page)
    return paged.apply(_filtered(filters, paged, page), page)


async def get(session: AsyncSession, process_id: int) -> Process:
    """The process row, or 404."""
    return await get_or_raise(session, Process, process_id, not_found=ProcessNotFound)


async def get_for_update(session: AsyncSession, process_id: int) -> Process:
    """The process row, locked: concurrent writers of one process queue up here."""
    return await get_or_raise(
        session, Process, process_id, not_found=ProcessNotFound, for_update=True
    )


async def read(session: AsyncSession, process_id: int) -> ProcessRead:
    """One process as the API shows it (one statement)."""
    connection = await session.connection()
    result = await connection.execute(PROCESS_BY_ID, {"process_id": process_id})
    row = result.one_or_none()
    if row is None:
        raise ProcessNotFound(f"Process {process_id} does not exist.")
    return ProcessRead.model_validate(row, from_attributes=True)


async def list(
    session: AsyncSession, *, filters: ProcessFilters, page: PageParams
) -> PageResult[ProcessRead]:
    """A page of processes with their links: two statements whatever the page size."""
    paged, page = paging(filters, page)
    keys = await fetch_page(
        session,
        _filtered(filters, paged, page),
        paged,
        page,
        rows=True,
        # Built only when asked for: a statement costs CPU to build even if never run.
        count_statement=(
            select(Process.id).where(*conditions(filters)) if page.include_total else None
        ),
    )
    if not keys.items:
        return PageResult([], keys.next_cursor, keys.total)
    ids = [key.id for key in keys.items]
    found = {row.id: row for row in await session.execute(PROCESSES_BY_IDS, {"ids": ids})}
    rows = [found[process_id] for process_id in ids if process_id in found]
    items = _ITEMS.validate_python(rows, from_attributes=True)
    return PageResult(items, keys.next_cursor, keys.total)


async def list_linked(
    session: AsyncSession, *, link: Link, target_id: int, page: PageParams
) -> PageResult[ProcessRead]:
    """The processes linked to one department, location, resource or role (404 if it is gone)."""
    await get_or_raise(session, link.target, target_id)
    filters = ProcessFilters.model_validate({link.column: target_id})
    return await list(session, filters=filters, page=page)


# One index-only scan of the partial index on review_due_at, which includes criticality.
OVERDUE_BY_CRITICALITY: Select[Criticality, int] = (
    select(Process.criticality, func.count())
    .where(Process.review_due_at < func.now())
    .group_by(Process.criticality)
)


async def count_overdue(connection: AsyncConnection) -> dict[Criticality, int]:
    """How many processes are overdue for review, for every criticality (zeros included)."""
    counts = dict.fromkeys(Criticality, 0)
    for criticality, count in await connection.execute(OVERDUE_BY_CRITICALITY):
        counts[Criticality(criticality)] = count
    return counts


async def refresh_review_gauge(engine: AsyncEngine) -> None:
    """Count the overdue processes (one statement) into `process_atlas_processes_review_overdue`."""
    async with engine.connect() as connection:
        counts = await count_overdue(connection)
    for criticality, count in counts.items():
        PROCESSES_REVIEW_OVERDUE.labels(criticality.value).set(count)
