"""Roles: job functions that grant permissions; nobody grants what they do not hold."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.database import after_commit
from app.domains.audit.service import Audited
from app.domains.auth import delegation
from app.domains.auth.context import AuthContext
from app.domains.auth.principal import Principal
from app.domains.role import queries as role_queries
from app.domains.role.exceptions import RoleInUse
from app.domains.role.models import Role
from app.domains.role.schemas import RoleCreate, RoleRead, RoleUpdate
from app.domains.user.models import user_roles

AUDITED = Audited("role", fields=("name", "description", "permissions"))


async def create(session: AsyncSession, *, data: RoleCreate, actor: Principal) -> RoleRead:
    """Create a role holding only permissions the creator holds."""
    delegation.ensure_within(actor, permissions=data.permissions, action="create this role")
    role = Role(
        name=data.name,
        description=data.description,
        permissions=data.permissions,
        created_by_id=actor.user_id,
    )
    async with AUDITED.creating(session, role, actor=actor):
        pass
    return await role_queries.read(session, role)


async def update(
    session: AsyncSession,
    *,
    role: Role,
    data: RoleUpdate,
    actor: Principal,
    if_match: list[int] | None,
    auth: AuthContext,
) -> RoleRead:
    """Rename or re-permission a role; its holders' permissions change on their next request."""
    changes = sent_fields(data, required=("name", "permissions"))
    # Editing a role needs every permission it holds now and every one it will hold.
    delegation.ensure_within(
        actor,
        permissions=[*role.permissions, *changes.get("permissions", [])],
        action=f"change role {role.id}",
    )
    async with AUDITED.updating(session, role, actor=actor, if_match=if_match) as change:
        change.apply(changes)
    if "permissions" in change.changes:
        after_commit(session, auth.token_state.roles_changed)
    return await role_queries.read(session, role)


async def delete(
    session: AsyncSession,
    *,
    role: Role,
    actor: Principal,
    if_match: list[int] | None,
    auth: AuthContext,
) -> None:
    """Delete a role nobody holds; its links from processes go with it."""
    delegation.ensure_within(actor, permissions=role.permissions, action=f"delete role {role.id}")
    async with AUDITED.deleting(session, role, actor=actor, if_match=if_match):
        holders = await session.scalar(
            select(func.count()).select_from(user_roles).where(user_roles.c.role_id == role.id)
        )
        if holders:
            raise RoleInUse(role.id, holders)
    after_commit(session, auth.token_state.roles_changed)
