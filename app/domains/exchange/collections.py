"""What each collection's file holds, and which of the domain's own parts read and write it.

A file has the table's columns (secrets left out), in table order. A column holding another
row's id is followed by the column naming that row by natural key where it has one
(`parent_id`, `parent_code`); a process's links, and a user's roles, come before the
timestamps as `;`-joined ids and names (CSV) or arrays of `{id, name}` (NDJSON).

Natural keys: a department's `code`, a role's `name` and a user's `email` (both ignoring
case). Locations, resources and processes have none: they are matched by id only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ARRAY, Column, ColumnElement, Select, Table, func

from app.domains.audit.service import SECRET_FIELDS, Audited
from app.domains.department import queries as department_queries
from app.domains.department import service as department_service
from app.domains.department.models import Department
from app.domains.department.schemas import DepartmentCreate, DepartmentFilters, DepartmentUpdate
from app.domains.location import queries as location_queries
from app.domains.location import service as location_service
from app.domains.location.models import Location
from app.domains.location.schemas import LocationCreate, LocationFilters, LocationUpdate
from app.domains.process import queries as process_queries
from app.domains.process import service as process_service
from app.domains.process.models import Process
from app.domains.process.schemas import ProcessCreate, ProcessFilters, ProcessUpdate
from app.domains.resource import queries as resource_queries
from app.domains.resource import service as resource_service
from app.domains.resource.models import Resource
from app.domains.resource.schemas import ResourceCreate, ResourceFilters, ResourceUpdate
from app.domains.role import queries as role_queries
from app.domains.role import service as role_service
from app.domains.role.models import Role
from app.domains.role.schemas import RoleCreate, RoleFilters, RoleUpdate
from app.domains.user import queries as user_queries
from app.domains.user.models import User, user_roles
from app.domains.user.schemas import UserFilters

LIST_SEPARATOR = ";"


@dataclass(frozen=True, slots=True)
class NaturalKey:
    """The column that names a row as people do, unique in its table."""

    column: str
    folded: bool = False
    """Unique ignoring case (compared lower-cased)."""

    def of(self, model: Any) -> ColumnElement[Any]:
        column = getattr(model, self.column)
        return func.lower(column) if self.folded else column

    def fold(self, value: str) -> str:
        return value.lower() if self.folded else value


KEYS: dict[Any, NaturalKey] = {
    Department: NaturalKey("code"),
    Role: NaturalKey("name", folded=True),
    User: NaturalKey("email", folded=True),
}


def entity_name(model: Any) -> str:
    """How messages name a row of `model`: "department"."""
    return str(model.__name__).lower()


@dataclass(frozen=True, slots=True)
class Reference:
    """A column holding another row's id; the file may name that row by natural key instead."""

    column: str
    """The id column: "parent_id"."""
    target: Any
    key_column: str | None = None
    """The column naming the same row by its natural key: "parent_code"."""

    @property
    def key(self) -> NaturalKey | None:
        return KEYS.get(self.target) if self.key_column else None


@dataclass(frozen=True, eq=False)
class LinkKind:
    """A many-to-many link as files carry it: `role_ids` and `role_names`, or `roles`."""

    name: str
    """The NDJSON key and the API's list: "roles"."""
    table: Table
    owner: str
    """The owning row's id in `table`: "process_id"."""
    column: str
    """The linked row's id in `table`: "role_id"."""
    target: Any

    @cached_property
    def field(self) -> str:
        """The API's (and the CSV's) list of ids: "role_ids"."""
        return f"{self.column.removesuffix('_id')}_ids"

    @cached_property
    def names(self) -> str:
        return f"{self.column.removesuffix('_id')}_names"

    @cached_property
    def key(self) -> NaturalKey | None:
        return KEYS.get(self.target)

    @cached_property
    def key_column(self) -> str | None:
        """The CSV column naming the links by natural key: the names, or `department_codes`."""
        key = self.key
        if key is None:
            return None
        singular = self.column.removesuffix("_id")
        return self.names if key.column == "name" else f"{singular}_{key.column}s"


@dataclass(frozen=True, slots=True, eq=False)
class Importing:
    """How rows of a collection are written: the API's schemas and audit trail, and its rules."""

    create: type[BaseModel]
    update: type[BaseModel]
    audited: Audited
    tree: bool = False
    """Rows have a `parent_id` in the same table: no cycles, parents in any order."""
    nested: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """A schema field made of several columns: `address` -> {"line1": "address_line1", ...}."""
    unique_among_siblings: bool = False
    """Names are unique under one parent, ignoring case (departments)."""
    delegated: bool = False
    """Rows carry permissions: the caller must hold them all (roles)."""


Where = Callable[[Any, int], list[ColumnElement[bool]]]


@dataclass(frozen=True, slots=True, eq=False)
class Collection:
    name: str
    model: Any
    filters: type[BaseModel]
    where: Where
    """The list's filter conditions, for the rows after an id."""
    references: tuple[Reference, ...] = ()
    links: tuple[LinkKind, ...] = ()
    importing: Importing | None = None
    """None: export only."""

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__
        return table

    @property
    def key(self) -> NaturalKey | None:
        return KEYS.get(self.model)

    @property
    def entity(self) -> str:
        return entity_name(self.model)

    def columns(self) -> list[Column[Any]]:
        """The table's columns a file carries: every one but secrets."""
        return [
            column
            for column in self.table.columns
            if column.name not in SECRET_FIELDS and not column.name.endswith("_hash")
        ]

    def csv_columns(self) -> list[str]:
        return self._layout({link.name: [link.field, link.names] for link in self.links})

    def ndjson_keys(self) -> list[str]:
        return self._layout({link.name: [link.name] for link in self.links})

    def _layout(self, links: Mapping[str, list[str]]) -> list[str]:
        keys = {reference.column: reference.key_column for reference in self.references}
        names: list[str] = []
        for column in self.columns():
            if column.name == "created_at":
                names.extend(name for group in links.values() for name in group)
            names.append(column.name)
            if keys.get(column.name):
                names.append(str(keys[column.name]))
        return names

    def python_type(self, column: str) -> type:
        """What a CSV cell of a table column holds once read: int, bool, list or str."""
        column_type = self.table.c[column].type
        if isinstance(column_type, ARRAY):
            return list
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            return str
        return python_type if python_type in (int, bool) else str


def _filtered(build: Callable[[Any], Select[Any]], model: Any) -> Where:
    """The conditions of a domain's `filtered(filters)` statement, after an id."""

    def where(filters: Any, after: int) -> list[ColumnElement[bool]]:
        clause = build(filters).whereclause
        return [model.id > after, *([] if clause is None else [clause])]

    return where


def _process_conditions(filters: Any, after: int) -> list[ColumnElement[bool]]:
    # The bound also starts link filters at the batch (their index is keyed by process id).
    return [Process.id > after, *process_queries.conditions(filters, (after, False))]


PROCESS_LINKS = tuple(
    LinkKind(link.name, link.table, "process_id", link.column, link.target)
    for link in process_queries.LINKS.values()
)

DEPARTMENTS = Collection(
    "departments",
    Department,
    DepartmentFilters,
    _filtered(department_queries.filtered, Department),
    references=(
        Reference("parent_id", Department, "parent_code"),
        Reference("manager_id", User, "manager_email"),
    ),
    importing=Importing(
        DepartmentCreate,
        DepartmentUpdate,
        department_service.AUDITED,
        tree=True,
        unique_among_siblings=True,
    ),
)
LOCATIONS = Collection(
    "locations",
    Location,
    LocationFilters,
    _filtered(location_queries.filtered, Location),
    references=(Reference("parent_id", Location),),
    importing=Importing(
        LocationCreate,
        LocationUpdate,
        location_service.AUDITED,
        tree=True,
        nested={"address": location_service.ADDRESS_COLUMNS},
    ),
)
RESOURCES = Collection(
    "resources",
    Resource,
    ResourceFilters,
    _filtered(resource_queries.filtered, Resource),
    references=(
        Reference("location_id", Location),
        Reference("department_id", Department, "department_code"),
    ),
    importing=Importing(ResourceCreate, ResourceUpdate, resource_service.AUDITED),
)
ROLES = Collection(
    "roles",
    Role,
    RoleFilters,
    _filtered(role_queries.filtered, Role),
    importing=Importing(RoleCreate, RoleUpdate, role_service.AUDITED, delegated=True),
)
PROCESSES = Collection(
    "processes",
    Process,
    ProcessFilters,
    _process_conditions,
    references=(Reference("owner_id", User, "owner_email"),),
    links=PROCESS_LINKS,
    importing=Importing(ProcessCreate, ProcessUpdate, process_service.AUDITED),
)
USERS = Collection(
    "users",
    User,
    UserFilters,
    _filtered(user_queries.filtered, User),
    links=(LinkKind("roles", user_roles, "user_id", "role_id", Role),),
)

COLLECTIONS: dict[str, Collection] = {
    collection.name: collection
    for collection in (DEPARTMENTS, LOCATIONS, RESOURCES, PROCESSES, ROLES, USERS)
}
