"""Roles: job functions that grant permissions; nobody grants what they do not hold."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.database import after_commit
from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.versioning import check_version
from app.domains.audit import service as audit
from app.domains.auth import delegation
from app.domains.auth.context import AuthContext
from app.domains.auth.principal import Principal
from app.domains.role.exceptions import RoleInUse, RoleNameTaken, RoleNotFound
from app.domains.role.models import Role
from app.domains.role.schemas import RoleCreate, RoleFilters, RoleUpdate
from app.domains.user.models import user_roles

ENTITY = "role"
AUDITED_FIELDS = ("name", "description", "permissions")
keyset = Keyset(
    Role.id, {"name": Role.name, "created_at": Role.created_at, "updated_at": Role.updated_at}
)


def _filtered(filters: RoleFilters) -> Select[Role]:
    statement = select(Role)
    if filters.q:
        statement = statement.where(contains(filters.q, Role.name))
    if filters.permission:
        statement = statement.where(Role.permissions.contains([filters.permission]))
    return statement


async def list_roles(
    session: AsyncSession, *, filters: RoleFilters, page: PageParams
) -> PageResult[Role]:
    return await fetch_page(session, _filtered(filters), keyset, page)


async def get(session: AsyncSession, role_id: int, *, for_update: bool = False) -> Role:
    return await get_or_raise(session, Role, role_id, not_found=RoleNotFound, for_update=for_update)


async def _name_free(session: AsyncSession, name: str, *, except_id: int | None = None) -> None:
    statement = select(Role.id).where(func.lower(Role.name) == name.lower())
    if except_id is not None:
        statement = statement.where(Role.id != except_id)
    if await session.scalar(statement) is not None:
        raise RoleNameTaken()


async def _flush(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        if "uq_roles_name_lower" in str(error.orig):
            raise RoleNameTaken() from None
        raise


async def create(
    session: AsyncSession, auth: AuthContext, *, data: RoleCreate, actor: Principal
) -> Role:
    """Create a role holding only permissions the creator holds."""
    delegation.ensure_within(actor, permissions=data.permissions, action="create this role")
    await _name_free(session, data.name)
    role = Role(
        name=data.name,
        description=data.description,
        permissions=data.permissions,
        created_by_id=actor.user_id,
    )
    session.add(role)
    await _flush(session)
    await session.refresh(role)
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="create",
        entity_type=ENTITY,
        entity_id=role.id,
        changes=audit.created(role, AUDITED_FIELDS),
    )
    return role


async def update(
    session: AsyncSession,
    auth: AuthContext,
    *,
    role: Role,
    data: RoleUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> Role:
    """Rename or re-permission a role; its holders' permissions change on their next request."""
    changes = sent_fields(data, required=("name", "permissions"))
    # Editing a role needs every permission it holds now and every one it will hold.
    delegation.ensure_within(
        actor,
        permissions=[*role.permissions, *changes.get("permissions", [])],
        action=f"change role {role.id}",
    )
    check_version(role.version, if_match)
    if "name" in changes:
        await _name_free(session, changes["name"], except_id=role.id)
    audit_changes: dict[str, Any] = audit.apply(role, changes, AUDITED_FIELDS)
    if not audit_changes:
        return role
    await _flush(session)
    await session.refresh(role)
    if "permissions" in audit_changes:
        after_commit(session, auth.token_state.roles_changed)
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="update",
        entity_type=ENTITY,
        entity_id=role.id,
        changes=audit_changes,
    )
    return role


async def delete_role(
    session: AsyncSession,
    auth: AuthContext,
    *,
    role: Role,
    actor: Principal,
    if_match: list[int] | None,
) -> None:
    """Delete a role nobody holds; its links from processes go with it."""
    delegation.ensure_within(actor, permissions=role.permissions, action=f"delete role {role.id}")
    check_version(role.version, if_match)
    holders = await session.scalar(
        select(func.count()).select_from(user_roles).where(user_roles.c.role_id == role.id)
    )
    if holders:
        raise RoleInUse(role.id, holders)
    before = audit.snapshot(role, AUDITED_FIELDS)
    await session.delete(role)
    await session.flush()
    after_commit(session, auth.token_state.roles_changed)
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="delete",
        entity_type=ENTITY,
        entity_id=role.id,
        changes=audit.deleted(before),
    )
