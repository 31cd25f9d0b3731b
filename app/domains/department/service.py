"""Departments: a tree of organisational units, each with an optional code and manager."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import ensure_unreferenced, require_ids
from app.core.trees import check_parent
from app.domains.audit.service import Audited
from app.domains.auth.principal import Principal
from app.domains.department import queries as department_queries
from app.domains.department.exceptions import DepartmentCodeTaken, DepartmentNameTaken
from app.domains.department.models import Department
from app.domains.department.schemas import DepartmentCreate, DepartmentRead, DepartmentUpdate
from app.domains.resource.models import Resource
from app.domains.user.models import User

AUDITED = Audited("department", fields=("name", "code", "description", "parent_id", "manager_id"))


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
    async with AUDITED.creating(session, department, actor=actor):
        pass
    return await department_queries.read(session, department)


async def update(
    session: AsyncSession,
    *,
    department: Department,
    data: DepartmentUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> DepartmentRead:
    """Rename, re-code, re-parent or re-manage a department."""
    async with AUDITED.updating(session, department, actor=actor, if_match=if_match) as change:
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
        change.apply(changes)
    return await department_queries.read(session, department)


async def delete(
    session: AsyncSession, *, department: Department, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a department nothing depends on; its links from processes go with it."""
    async with AUDITED.deleting(session, department, actor=actor, if_match=if_match):
        await ensure_unreferenced(
            session,
            f"Department {department.id}",
            {
                "child departments": Department.parent_id == department.id,
                "users": User.department_id == department.id,
                "resources": Resource.department_id == department.id,
            },
        )
