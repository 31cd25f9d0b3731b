"""Departments: a tree of organisational units, each with an optional code and manager."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import ensure_unreferenced, get_or_raise, require_ids
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.summaries import PersonSummary
from app.core.trees import check_parent, lock_tree, nest, walk_subtree
from app.core.versioning import check_version
from app.domains.audit import service as audit
from app.domains.auth.principal import Principal
from app.domains.department.exceptions import (
    DepartmentCodeTaken,
    DepartmentNameTaken,
    DepartmentNotFound,
)
from app.domains.department.models import Department
from app.domains.department.schemas import (
    DepartmentCreate,
    DepartmentFilters,
    DepartmentRead,
    DepartmentUpdate,
)
from app.domains.resource.models import Resource
from app.domains.user.models import User

ENTITY = "department"
AUDITED_FIELDS = ("name", "code", "description", "parent_id", "manager_id")
# `code` is not sortable: keyset cursors cannot step over NULLs, and most codes may be NULL.
keyset = Keyset(
    Department.id,
    {
        "name": Department.name,
        "created_at": Department.created_at,
        "updated_at": Department.updated_at,
    },
)


_COLUMNS = tuple(name for name in DepartmentRead.model_fields if name != "manager")


def _filtered(filters: DepartmentFilters) -> Select[Department]:
    statement = select(Department)
    if filters.q:
        statement = statement.where(contains(filters.q, Department.name, Department.code))
    if filters.parent_id is not None:
        statement = statement.where(Department.parent_id == filters.parent_id)
    if filters.root is not None:
        statement = statement.where(
            Department.parent_id.is_(None) if filters.root else Department.parent_id.is_not(None)
        )
    if filters.manager_id is not None:
        statement = statement.where(Department.manager_id == filters.manager_id)
    if filters.created_by_id is not None:
        statement = statement.where(Department.created_by_id == filters.created_by_id)
    return statement


async def _managers(
    session: AsyncSession, departments: Iterable[Department]
) -> dict[int, PersonSummary]:
    """The managers of `departments` as summaries, in one query (none when nobody manages)."""
    ids = {d.manager_id for d in departments if d.manager_id is not None}
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))
    return {row.id: PersonSummary(id=row.id, full_name=row.full_name) for row in rows}


def _read(department: Department, managers: Mapping[int, PersonSummary]) -> DepartmentRead:
    manager = managers.get(department.manager_id) if department.manager_id is not None else None
    columns = {name: getattr(department, name) for name in _COLUMNS}
    return DepartmentRead.model_validate({**columns, "manager": manager})


async def view(session: AsyncSession, department: Department) -> DepartmentRead:
    """The department as the API shows it, with its manager's summary."""
    return _read(department, await _managers(session, [department]))


async def list_departments(
    session: AsyncSession, *, filters: DepartmentFilters, page: PageParams
) -> PageResult[DepartmentRead]:
    """A page of departments and, in one more query, the summaries of their managers."""
    result = await fetch_page(session, _filtered(filters), keyset, page)
    managers = await _managers(session, result.items)
    items = [_read(department, managers) for department in result.items]
    return PageResult(items, result.next_cursor, result.total)


async def get(session: AsyncSession, department_id: int, *, for_update: bool = False) -> Department:
    if for_update:
        await lock_tree(session, Department)
    return await get_or_raise(
        session, Department, department_id, not_found=DepartmentNotFound, for_update=for_update
    )


async def subtree(session: AsyncSession, department_id: int) -> dict[str, Any]:
    """The department and every descendant, nested, from one recursive query."""
    rows = await walk_subtree(session, Department, department_id)
    if not rows:
        raise DepartmentNotFound(f"Department {department_id} does not exist.")
    return nest(
        rows,
        lambda d: {
            "id": d.id,
            "name": d.name,
            "code": d.code,
            "parent_id": d.parent_id,
            "manager_id": d.manager_id,
        },
    )


async def _code_free(session: AsyncSession, code: str, *, except_id: int | None = None) -> None:
    statement = select(Department.id).where(Department.code == code)
    if except_id is not None:
        statement = statement.where(Department.id != except_id)
    if await session.scalar(statement) is not None:
        raise DepartmentCodeTaken(code)


async def _name_free_among_siblings(
    session: AsyncSession, name: str, parent_id: int | None, *, except_id: int | None = None
) -> None:
    statement = select(Department.id).where(
        func.coalesce(Department.parent_id, 0) == (parent_id or 0),
        func.lower(Department.name) == name.lower(),
    )
    if except_id is not None:
        statement = statement.where(Department.id != except_id)
    if await session.scalar(statement) is not None:
        raise DepartmentNameTaken(name)


async def _flush(session: AsyncSession, department: Department) -> None:
    """Flush, turning a unique violation by a concurrent writer into the same 409."""
    try:
        await session.flush()
    except IntegrityError as error:
        if "uq_departments_code" in str(error.orig):
            raise DepartmentCodeTaken(department.code or "") from None
        if "uq_departments_parent_id_name" in str(error.orig):
            raise DepartmentNameTaken(department.name) from None
        raise


async def create(
    session: AsyncSession, *, data: DepartmentCreate, actor: Principal
) -> DepartmentRead:
    """Create a department under an existing parent (or as a root)."""
    await check_parent(session, Department, node_id=None, parent_id=data.parent_id)
    if data.manager_id is not None:
        await require_ids(session, User.id, [data.manager_id], "manager_id")
    if data.code is not None:
        await _code_free(session, data.code)
    await _name_free_among_siblings(session, data.name, data.parent_id)
    department = Department(**data.model_dump(), created_by_id=actor.user_id)
    session.add(department)
    await _flush(session, department)
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="create",
        entity_type=ENTITY,
        entity_id=department.id,
        changes=audit.created(department, AUDITED_FIELDS),
    )
    return await view(session, department)


async def update(
    session: AsyncSession,
    *,
    department: Department,
    data: DepartmentUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> DepartmentRead:
    """Rename, re-code, re-parent or re-manage a department."""
    check_version(department.version, if_match)
    changes = sent_fields(data, required=("name",))
    if "parent_id" in changes and changes["parent_id"] != department.parent_id:
        await check_parent(
            session, Department, node_id=department.id, parent_id=changes["parent_id"]
        )
    if changes.get("manager_id") is not None:
        await require_ids(session, User.id, [changes["manager_id"]], "manager_id")
    if changes.get("code") is not None:
        await _code_free(session, changes["code"], except_id=department.id)
    if "name" in changes or "parent_id" in changes:
        await _name_free_among_siblings(
            session,
            changes.get("name", department.name),
            changes.get("parent_id", department.parent_id),
            except_id=department.id,
        )
    audit_changes = audit.apply(department, changes, AUDITED_FIELDS)
    if audit_changes:
        await _flush(session, department)
        await audit.record(
            session,
            actor_id=actor.user_id,
            action="update",
            entity_type=ENTITY,
            entity_id=department.id,
            changes=audit_changes,
        )
    return await view(session, department)


async def delete_department(
    session: AsyncSession, *, department: Department, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a department nothing depends on; its links from processes go with it."""
    check_version(department.version, if_match)
    await ensure_unreferenced(
        session,
        f"Department {department.id}",
        {
            "child departments": Department.parent_id == department.id,
            "users": User.department_id == department.id,
            "resources": Resource.department_id == department.id,
        },
    )
    before = audit.snapshot(department, AUDITED_FIELDS)
    await session.delete(department)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="delete",
        entity_type=ENTITY,
        entity_id=department.id,
        changes=audit.deleted(before),
    )
