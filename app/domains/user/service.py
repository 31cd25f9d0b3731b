"""Users: accounts, their roles, and the rules that stop anyone granting more than they hold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, exists, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.core.changes import assign, sent_fields
from app.core.database import after_commit
from app.core.errors import Conflict, Forbidden, ValidationFailed
from app.core.lookups import get_or_raise, require_ids
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.versioning import check_version
from app.domains.audit import service as audit
from app.domains.auth import delegation
from app.domains.auth import service as auth_service
from app.domains.auth.context import AuthContext
from app.domains.auth.dependencies import load_authorization
from app.domains.auth.principal import Principal
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.role.models import Role
from app.domains.user.exceptions import EmailTaken, UserNotFound, WrongPassword
from app.domains.user.models import User, user_roles
from app.domains.user.schemas import (
    PasswordChange,
    UserCreate,
    UserFilters,
    UserSelfUpdate,
    UserUpdate,
)

ENTITY = "user"
AUDITED_FIELDS = (
    "email",
    "full_name",
    "job_title",
    "is_active",
    "is_superuser",
    "department_id",
    "location_id",
)
keyset = Keyset(
    User.id,
    {
        "email": User.email,
        "full_name": User.full_name,
        "created_at": User.created_at,
        "updated_at": User.updated_at,
    },
)
WITH_ROLES = (
    selectinload(User.roles),
    selectinload(User.department),
    selectinload(User.location),
)


def _filtered(filters: UserFilters) -> Select[User]:
    statement = select(User).options(*WITH_ROLES)
    if filters.q:
        statement = statement.where(contains(filters.q, User.email, User.full_name))
    if filters.is_active is not None:
        statement = statement.where(User.is_active == filters.is_active)
    if filters.is_superuser is not None:
        statement = statement.where(User.is_superuser == filters.is_superuser)
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


async def list_users(
    session: AsyncSession, *, filters: UserFilters, page: PageParams
) -> PageResult[User]:
    return await fetch_page(session, _filtered(filters), keyset, page)


async def get(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User:
    return await get_or_raise(
        session, User, user_id, not_found=UserNotFound, for_update=for_update, options=WITH_ROLES
    )


def _check_password_policy(auth: AuthContext, password: str) -> None:
    low, high = auth.settings.password_min_length, auth.settings.password_max_length
    if not low <= len(password) <= high:
        raise ValidationFailed(f"A password must have {low} to {high} characters.")


async def _ensure_grantable(
    session: AsyncSession,
    actor: Principal,
    *,
    role_ids: Sequence[int],
    superuser: bool,
    action: str,
) -> None:
    """Every role exists, and the actor holds all the roles grant (and `superuser`, if set)."""
    await require_ids(session, Role.id, role_ids, "role_ids")
    granted: list[str] = []
    if role_ids and not actor.is_superuser:
        rows = await session.scalars(select(Role.permissions).where(Role.id.in_(role_ids)))
        granted = [permission for permissions in rows for permission in permissions]
    delegation.ensure_within(actor, permissions=granted, superuser=superuser, action=action)


async def _ensure_manageable(
    session: AsyncSession, actor: Principal, *, user: User, action: str
) -> None:
    """The actor holds all the user holds, as read after the route locked the user's row."""
    held = await load_authorization(session, user.id)
    if held is None:
        raise UserNotFound(f"User {user.id} does not exist.")
    delegation.ensure_within(
        actor, permissions=held.permissions, superuser=held.is_superuser, action=action
    )


async def _set_roles(session: AsyncSession, user_id: int, role_ids: Sequence[int]) -> None:
    await session.execute(delete(user_roles).where(user_roles.c.user_id == user_id))
    if role_ids:
        await session.execute(
            insert(user_roles), [{"user_id": user_id, "role_id": rid} for rid in set(role_ids)]
        )


async def _check_placement(
    session: AsyncSession, department_id: int | None, location_id: int | None
) -> None:
    if department_id is not None:
        await require_ids(session, Department.id, [department_id], "department_id")
    if location_id is not None:
        await require_ids(session, Location.id, [location_id], "location_id")


async def _email_free(session: AsyncSession, email: str, *, except_id: int | None = None) -> None:
    statement = select(User.id).where(User.email == email)
    if except_id is not None:
        statement = statement.where(User.id != except_id)
    if await session.scalar(statement) is not None:
        raise EmailTaken()


async def create(
    session: AsyncSession, auth: AuthContext, *, data: UserCreate, actor: Principal | None
) -> User:
    """Create an account holding nothing beyond what its creator holds."""
    if actor is not None:
        await _ensure_grantable(
            session,
            actor,
            role_ids=data.role_ids,
            superuser=data.is_superuser,
            action="create this user",
        )
    _check_password_policy(auth, data.password)
    await _email_free(session, data.email)
    await _check_placement(session, data.department_id, data.location_id)
    user = User(
        email=data.email,
        full_name=data.full_name,
        job_title=data.job_title,
        is_active=data.is_active,
        is_superuser=data.is_superuser,
        department_id=data.department_id,
        location_id=data.location_id,
        password_hash=await auth.passwords.hash(data.password),
        created_by_id=actor.user_id if actor else None,
    )
    session.add(user)
    await _flush_unique(session)
    await _set_roles(session, user.id, data.role_ids)
    changes: dict[str, Any] = audit.created(user, AUDITED_FIELDS)
    if data.role_ids:
        changes["role_ids"] = audit.link_changes([], data.role_ids)
    await audit.record(
        session,
        actor_id=actor.user_id if actor else None,
        action="create",
        entity_type=ENTITY,
        entity_id=user.id,
        changes=changes,
    )
    return await _reloaded(session, user)


async def _authorize_update(
    session: AsyncSession, actor: Principal, *, user: User, changes: dict[str, Any]
) -> None:
    """The account is within the actor's reach before and after; one's own password is not."""
    if user.id == actor.user_id and "password" in changes:
        raise Forbidden(
            "Change your own password with POST /api/v1/users/me/password, "
            "which asks for the current one."
        )
    action = f"change user {user.id}"
    await _ensure_manageable(session, actor, user=user, action=action)
    if "role_ids" in changes or changes.get("is_superuser"):
        await _ensure_grantable(
            session,
            actor,
            role_ids=changes.get("role_ids") or [],
            superuser=changes.get("is_superuser", False),
            action=action,
        )


async def update(
    session: AsyncSession,
    auth: AuthContext,
    *,
    user: User,
    data: UserUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> User:
    """An administrator's partial update of an account (`role_ids` replaces the set)."""
    changes = sent_fields(data, required=("email", "full_name", "is_active", "is_superuser"))
    await _authorize_update(session, actor, user=user, changes=changes)
    check_version(user.version, if_match)
    if user.id == actor.user_id and changes.get("is_active") is False:
        raise Conflict("You cannot deactivate your own account.")
    role_ids = changes.pop("role_ids", None)
    password = changes.pop("password", None)
    if "email" in changes:
        await _email_free(session, changes["email"], except_id=user.id)
    await _check_placement(session, changes.get("department_id"), changes.get("location_id"))

    before = audit.snapshot(user, AUDITED_FIELDS)
    old_roles = [role.id for role in user.roles]
    assign(user, changes)
    audit_changes: dict[str, Any] = audit.diff(before, audit.snapshot(user, AUDITED_FIELDS))
    if password is not None:
        _check_password_policy(auth, password)
        user.password_hash = await auth.passwords.hash(password)
        audit_changes["password_changed"] = [None, True]
    if role_ids is not None:
        links = audit.link_changes(old_roles, role_ids)
        if links:
            await _set_roles(session, user.id, role_ids)
            audit_changes["role_ids"] = links
            user.updated_at = func.now()  # a new role set is a new version of the user
    if not audit_changes:
        return user
    await _flush_unique(session)
    if password is not None or changes.get("is_active") is False:
        await auth_service.end_all_sessions(session, auth, user_id=user.id)
    after_commit(session, lambda: auth.token_state.user_changed(user.id))
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="update",
        entity_type=ENTITY,
        entity_id=user.id,
        changes=audit_changes,
    )
    return await _reloaded(session, user)


async def update_self(
    session: AsyncSession, *, user: User, data: UserSelfUpdate, actor: Principal
) -> User:
    """Change one's own name and job title (nothing else goes through /users/me)."""
    changes = sent_fields(data, required=("full_name",))
    audit_changes = audit.apply(user, changes, AUDITED_FIELDS)
    if not audit_changes:
        return user
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="update",
        entity_type=ENTITY,
        entity_id=user.id,
        changes=audit_changes,
    )
    return await _reloaded(session, user)


async def change_password(
    session: AsyncSession, auth: AuthContext, *, data: PasswordChange, actor: Principal
) -> None:
    """Change one's own password and end every other session."""
    user = await get(session, actor.user_id, for_update=True)
    # A wrong current password is a guess: it spends the account's login allowance.
    await auth.login_throttle.reserve(email=user.email)
    if not await auth.passwords.verify(user.password_hash, data.current_password):
        raise WrongPassword()
    await auth.login_throttle.release(email=user.email)
    _check_password_policy(auth, data.new_password)
    user.password_hash = await auth.passwords.hash(data.new_password)
    await session.flush()
    await auth_service.end_all_sessions(
        session, auth, user_id=user.id, keep_session=actor.session_id
    )
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="update",
        entity_type=ENTITY,
        entity_id=user.id,
        changes={"password_changed": [None, True]},
    )


async def delete_user(
    session: AsyncSession,
    auth: AuthContext,
    *,
    user: User,
    actor: Principal,
    if_match: list[int] | None,
) -> None:
    """Delete an account that never created anything (else 409: deactivate it instead)."""
    await _ensure_manageable(session, actor, user=user, action=f"delete user {user.id}")
    check_version(user.version, if_match)
    if user.id == actor.user_id:
        raise Conflict("You cannot delete your own account.")
    user_id = user.id
    before = audit.snapshot(user, AUDITED_FIELDS)
    await session.delete(user)
    try:
        await session.flush()
    except IntegrityError as error:
        if "created_by_id" in str(error.orig):
            raise Conflict(
                f"User {user_id} created records that name them as author; "
                "deactivate the account (PATCH is_active=false) instead of deleting it."
            ) from None
        raise Conflict(
            f"User {user_id} is still referenced (as a manager or process owner); "
            "reassign those records or deactivate the account instead."
        ) from None
    await auth.token_state.end_sessions(user_id, auth.tokens.lifetime)
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="delete",
        entity_type=ENTITY,
        entity_id=user_id,
        changes=audit.deleted(before),
    )


async def _flush_unique(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        if "uq_users_email" in str(error.orig):
            raise EmailTaken() from None
        raise


async def _reloaded(session: AsyncSession, user: User) -> User:
    """The row as committed will read: server-side timestamps and roles, in one query."""
    return (
        await session.scalars(
            select(User)
            .where(User.id == user.id)
            .options(*WITH_ROLES)
            .execution_options(populate_existing=True)
        )
    ).one()
