"""Reading processes with everything a response embeds, in one SQL statement.

Each row carries the process's columns plus its owner, author and four link lists as
JSON built by PostgreSQL (`json_agg` in correlated subqueries), so a page of 200
processes costs one round trip, like a single process does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Table,
    bindparam,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import InstrumentedAttribute

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


def _link_list(link: Table, target: Any, column: str) -> ColumnElement[Any]:
    summary = func.json_build_object("id", target.id, "name", target.name)
    aggregated = (
        select(func.json_agg(aggregate_order_by(summary, target.id)))
        .select_from(link.join(target, target.id == link.c[column]))
        .where(link.c.process_id == Process.id)
        .scalar_subquery()
    )
    return type_coerce(func.coalesce(aggregated, EMPTY_JSON_ARRAY), JSON)


def _person(user_id: InstrumentedAttribute[int | None]) -> ColumnElement[Any]:
    person = (
        select(func.json_build_object("id", User.id, "full_name", User.full_name))
        .where(User.id == user_id)
        .scalar_subquery()
    )
    return type_coerce(person, JSON)


LINKS = {
    "departments": (process_departments, Department, "department_id"),
    "locations": (process_locations, Location, "location_id"),
    "resources": (process_resources, Resource, "resource_id"),
    "roles": (process_roles, Role, "role_id"),
}


# Built once: a statement is immutable (each .where() returns a copy), and building this
# one costs more CPU than running it. Reusing one object also reuses its memoized cache key.
PROCESS_VIEW: Select[Any] = select(
    Process.id,
    Process.title,
    Process.description,
    Process.status,
    Process.criticality,
    _person(Process.owner_id).label("owner"),
    *(_link_list(*spec).label(name) for name, spec in LINKS.items()),
    Process.created_at,
    Process.updated_at,
    _person(Process.created_by_id).label("created_by"),
    Process.version,
)

PROCESS_BY_ID: Select[Any] = PROCESS_VIEW.where(Process.id == bindparam("process_id"))


def process_view() -> Select[Any]:
    """SELECT processes with owner, created_by and link summaries (add WHERE and ORDER)."""
    return PROCESS_VIEW
