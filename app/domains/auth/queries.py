"""The read side of auth: what PostgreSQL says a user may do."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.auth.permissions import PERMISSIONS
from app.domains.auth.token_state import Authorization
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles


async def load_authorization(session: AsyncSession, user_id: int) -> Authorization | None:
    """The user's flags and the union of their roles' permissions, from PostgreSQL."""
    user = (
        await session.execute(select(User.is_active, User.is_superuser).where(User.id == user_id))
    ).one_or_none()
    if user is None:
        return None
    rows = await session.scalars(
        select(Role.permissions)
        .join(user_roles, user_roles.c.role_id == Role.id)
        .where(user_roles.c.user_id == user_id)
    )
    granted = frozenset(p for permissions in rows for p in permissions) & PERMISSIONS
    return Authorization(
        is_active=user.is_active, is_superuser=user.is_superuser, permissions=granted
    )
