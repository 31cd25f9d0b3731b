"""Reading departments: one by id, a filtered page, a subtree; managers embedded as summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.summaries import PersonSummary, summaries
from app.core.trees import lock_tree, nest, walk_subtree
from app.domains.department.exceptions import DepartmentNotFound
from app.domains.department.models import Department
from app.domains.department.schemas import DepartmentFilters, DepartmentNode, DepartmentRead
from app.domains.user.models import User

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


def filtered(filters: DepartmentFilters) -> Select[Department]:
    """The departments that `filters` select: the list pages them, the export streams them all."""
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


async def get(session: AsyncSession, department_id: int) -> Department:
    """The department with `department_id`, or DepartmentNotFound."""
    return await get_or_raise(session, Department, department_id, not_found=DepartmentNotFound)


async def get_for_update(session: AsyncSession, department_id: int) -> Department:
    """The department, its row locked until the transaction ends."""
    return await get_or_raise(
        session, Department, department_id, not_found=DepartmentNotFound, for_update=True
    )


async def lock_tree_and_get(session: AsyncSession, department_id: int) -> Department:
    """The tree lock, then the row lock: how every write of an existing department starts.

    The tree lock is table-wide: it queues this write behind every other writer of the
    tree, so that two concurrent moves cannot together close a loop (`lock_tree`).
    """
    await lock_tree(session, Department)
    return await get_for_update(session, department_id)


def _read(department: Department, managers: Mapping[int, PersonSummary]) -> DepartmentRead:
    manager = managers.get(department.manager_id) if department.manager_id is not None else None
    columns = {name: getattr(department, name) for name in _COLUMNS}
    return DepartmentRead.model_validate({**columns, "manager": manager})


async def read(session: AsyncSession, department: Department) -> DepartmentRead:
    """The department as the API shows it, with its manager's summary."""
    return _read(department, await summaries(session, User.full_name, [department.manager_id]))


async def list(
    session: AsyncSession, *, filters: DepartmentFilters, page: PageParams
) -> PageResult[DepartmentRead]:
    """A page of departments and, in one more query, the summaries of their managers."""
    result = await fetch_page(session, filtered(filters), keyset, page)
    managers = await summaries(session, User.full_name, (d.manager_id for d in result.items))
    items = [_read(department, managers) for department in result.items]
    return PageResult(items, result.next_cursor, result.total)


def _node(department: Department) -> dict[str, Any]:
    return {
        "id": department.id,
        "name": department.name,
        "code": department.code,
        "parent_id": department.parent_id,
        "manager_id": department.manager_id,
    }


async def subtree(session: AsyncSession, department_id: int) -> DepartmentNode:
    """The department and every descendant, nested, from one recursive query."""
    rows = await walk_subtree(session, Department, department_id)
    if not rows:
        raise DepartmentNotFound(f"Department {department_id} does not exist.")
    return DepartmentNode.model_validate(nest(rows, _node))
