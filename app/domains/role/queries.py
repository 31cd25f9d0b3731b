"""Reading roles: one by id or a filtered page."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.domains.role.exceptions import RoleNotFound
from app.domains.role.models import Role
from app.domains.role.schemas import RoleFilters, RoleRead

keyset = Keyset(
    Role.id, {"name": Role.name, "created_at": Role.created_at, "updated_at": Role.updated_at}
)


def filtered(filters: RoleFilters) -> Select[Role]:
    """The roles that `filters` select: the list pages them, the export streams them all."""
    statement = select(Role)
    if filters.q:
        statement = statement.where(contains(filters.q, Role.name))
    if filters.permission:
        statement = statement.where(Role.permissions.contains([filters.permission]))
    return statement


async def get(session: AsyncSession, role_id: int) -> Role:
    """The role with `role_id`, or RoleNotFound."""
    return await get_or_raise(session, Role, role_id, not_found=RoleNotFound)


async def get_for_update(session: AsyncSession, role_id: int) -> Role:
    """The role, its row locked until the transaction ends."""
    return await get_or_raise(session, Role, role_id, not_found=RoleNotFound, for_update=True)


async def read(session: AsyncSession, role: Role) -> RoleRead:
    """The role as the API shows it."""
    return RoleRead.model_validate(role)


async def list(
    session: AsyncSession, *, filters: RoleFilters, page: PageParams
) -> PageResult[RoleRead]:
    """A page of roles."""
    result = await fetch_page(session, filtered(filters), keyset, page)
    items = [RoleRead.model_validate(role) for role in result.items]
    return PageResult(items, result.next_cursor, result.total)
