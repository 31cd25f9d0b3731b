"""Reading users: one by id or a filtered page, placement and roles embedded as summaries."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.summaries import NamedSummary, summaries
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.role.models import Role
from app.domains.user.exceptions import UserNotFound
from app.domains.user.models import User, user_roles
from app.domains.user.schemas import UserFilters, UserRead

keyset = Keyset(
    User.id,
    {
        "email": User.email,
        "full_name": User.full_name,
        "created_at": User.created_at,
        "updated_at": User.updated_at,
    },
)
_COLUMNS = tuple(
    name for name in UserRead.model_fields if name not in {"department", "location", "roles"}
)


def filtered(filters: UserFilters) -> Select[User]:
    """The users that `filters` select: the list pages them, the export streams them all."""
    statement = select(User)
    if filters.q:
        statement = statement.where(contains(filters.q, User.email, User.full_name))
    if filters.is_active is not None:
        statement = statement.where(User.is_active == filters.is_active)
    if filters.is_superuser is not None:
        statement = statement.where(User.is_superuser == filters.is_superuser)
    if filters.is_service_account is not None:
        no_password = User.password_hash.is_(None)
        statement = statement.where(no_password if filters.is_service_account else ~no_password)
    if filters.role_id is not None:
        statement = statement.where(
            exists().where(user_roles.c.user_id == User.id, user_roles.c.role_id == filters.role_id)
        )
    if filters.department_id is not None:
        statement = statement.where(User.department_id == filters.department_id)
    if filters.location_id is not None:
        statement = statement.where(User.location_id == filters.location_id)
    if filters.created_by_id is not None:
        statement = statement.where(User.created_by_id == filters.created_by_id)
    return statement


async def get(session: AsyncSession, user_id: int) -> User:
    """The user with `user_id`, or UserNotFound."""
    return await get_or_raise(session, User, user_id, not_found=UserNotFound)


async def get_for_update(session: AsyncSession, user_id: int) -> User:
    """The user, its row locked until the transaction ends."""
    return await get_or_raise(session, User, user_id, not_found=UserNotFound, for_update=True)


async def _roles(
    session: AsyncSession, user_ids: Iterable[int]
) -> dict[int, builtins.list[NamedSummary]]:
    """`{user id: [role summary, ...]}` ordered by role id, in one query (none if no users)."""
    wanted = set(user_ids)
    held: dict[int, builtins.list[NamedSummary]] = {}
    if not wanted:
        return held
    rows = await session.execute(
        select(user_roles.c.user_id, Role.id, Role.name)
        .join(Role, Role.id == user_roles.c.role_id)
        .where(user_roles.c.user_id.in_(wanted))
        .order_by(Role.id)
    )
    for user_id, role_id, name in rows:
        held.setdefault(user_id, []).append({"id": role_id, "name": name})
    return held


async def held_roles(session: AsyncSession, user_id: int) -> builtins.list[NamedSummary]:
    """The roles the user holds, as summaries ordered by id."""
    return (await _roles(session, [user_id])).get(user_id, [])


def _read(
    user: User,
    roles: Sequence[NamedSummary],
    departments: Mapping[int, NamedSummary],
    locations: Mapping[int, NamedSummary],
) -> UserRead:
    return UserRead.model_validate(
        {
            **{name: getattr(user, name) for name in _COLUMNS},
            "department": departments.get(user.department_id) if user.department_id else None,
            "location": locations.get(user.location_id) if user.location_id else None,
            "roles": roles,
        }
    )


async def read(
    session: AsyncSession, user: User, *, roles: Sequence[NamedSummary] | None = None
) -> UserRead:
    """The user as the API shows it, with their department, location and roles as summaries.

    `roles`: the user's `held_roles`, when the caller has just read them (one query less).
    """
    if roles is None:
        roles = await held_roles(session, user.id)
    departments = await summaries(session, Department.name, [user.department_id])
    locations = await summaries(session, Location.name, [user.location_id])
    return _read(user, roles, departments, locations)


async def list(
    session: AsyncSession, *, filters: UserFilters, page: PageParams
) -> PageResult[UserRead]:
    """A page of users and, in one query per kind, their roles, departments and locations."""
    result = await fetch_page(session, filtered(filters), keyset, page)
    roles = await _roles(session, (user.id for user in result.items))
    departments = await summaries(session, Department.name, (u.department_id for u in result.items))
    locations = await summaries(session, Location.name, (u.location_id for u in result.items))
    items = [_read(user, roles.get(user.id, []), departments, locations) for user in result.items]
    return PageResult(items, result.next_cursor, result.total)
