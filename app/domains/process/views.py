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
"""

from __future__ import annotations

from typing import Any

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
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process.models import (
    Process,
    process_departments,
    process_locations,
    process_resources,
    process_roles,
)
from app.domains.resource.models import Resource
from app.domains.role.models import Role
from app.domains.user.models import User

EMPTY_JSON_ARRAY: ColumnElement[Any] = literal_column("'[]'::json")
PAGE_IDS = bindparam("ids", type_=ARRAY(BigInteger))

LINKS = {
    "departments": (process_departments, Department, "department_id"),
    "locations": (process_locations, Location, "location_id"),
    "resources": (process_resources, Resource, "resource_id"),
    "roles": (process_roles, Role, "role_id"),
}

# Which processes are on a page, and where it ends: the id and every sortable column.
PAGE_KEYS: Select[Any] = select(  # type: ignore[assignment]
    Process.id,
    Process.title,
    Process.status,
    Process.criticality,
    Process.created_at,
    Process.updated_at,
)


def _summaries(target: Any) -> ColumnElement[Any]:
    """`[{id, name}, ...]` of the linked targets, in id order (an aggregate)."""
    summary = func.json_build_object("id", target.id, "name", target.name)
    return func.json_agg(aggregate_order_by(summary, target.id))


def _link_list(link: Table, target: Any, column: str) -> ColumnElement[Any]:
    aggregated = (
        select(_summaries(target))
        .select_from(link.join(target, target.id == link.c[column]))
        .where(link.c.process_id == Process.id)
        .scalar_subquery()
    )
    return type_coerce(func.coalesce(aggregated, EMPTY_JSON_ARRAY), JSON)


def _person_of(user_id: InstrumentedAttribute[int | None]) -> ColumnElement[Any]:
    person = (
        select(func.json_build_object("id", User.id, "full_name", User.full_name))
        .where(User.id == user_id)
        .scalar_subquery()
    )
    return type_coerce(person, JSON)


# Built once: building this statement costs more CPU than running it, and reusing one
# object also reuses its memoized cache key.
PROCESS_BY_ID: Select[Any] = select(
    Process.id,
    Process.title,
    Process.description,
    Process.status,
    Process.criticality,
    _person_of(Process.owner_id).label("owner"),
    *(_link_list(*spec).label(name) for name, spec in LINKS.items()),
    Process.created_at,
    Process.updated_at,
    _person_of(Process.created_by_id).label("created_by"),
    Process.version,
).where(Process.id == bindparam("process_id"))


def _page_links(link: Table, target: Any, column: str) -> FromClause:
    return (
        select(link.c.process_id, _summaries(target).label("links"))
        .select_from(link.join(target, target.id == link.c[column]))
        .where(link.c.process_id == any_(PAGE_IDS))
        .group_by(link.c.process_id)
        .subquery()
    )


def _person_summary(person: Any) -> ColumnElement[Any]:
    summary = func.json_build_object("id", person.id, "full_name", person.full_name)
    return type_coerce(case((person.id.is_(None), None), else_=summary), JSON)


def _processes_by_ids() -> Select[Any]:
    owner, author = aliased(User), aliased(User)
    links = {name: _page_links(*spec) for name, spec in LINKS.items()}
    joined: FromClause = Process.__table__.outerjoin(owner, owner.id == Process.owner_id).outerjoin(
        author, author.id == Process.created_by_id
    )
    for aggregated in links.values():
        joined = joined.outerjoin(aggregated, aggregated.c.process_id == Process.id)
    return (
        select(
            Process.id,
            Process.title,
            Process.description,
            Process.status,
            Process.criticality,
            _person_summary(owner).label("owner"),
            *(
                type_coerce(func.coalesce(aggregated.c.links, EMPTY_JSON_ARRAY), JSON).label(name)
                for name, aggregated in links.items()
            ),
            Process.created_at,
            Process.updated_at,
            _person_summary(author).label("created_by"),
            Process.version,
        )
        .select_from(joined)
        .where(Process.id == any_(PAGE_IDS))
    )


# The processes of a page (`ids`) as the API shows them, each read whole from one
# snapshot; each link list is aggregated for the whole page in one hash join per kind.
# Built once, like PROCESS_BY_ID.
PROCESSES_BY_IDS: Select[Any] = _processes_by_ids()
