"""Users: accounts, their roles, and the rules that stop anyone granting more than they hold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.database import after_commit
from app.core.errors import Conflict, Forbidden, ValidationFailed
from app.core.lookups import require_ids
from app.domains.audit.service import Audited
from app.domains.auth import delegation
from app.domains.auth import queries as auth_queries
from app.domains.auth import service as auth_service
from app.domains.auth.context import AuthContext
from app.domains.auth.exceptions import RefusedToApiTokens
from app.domains.auth.principal import Principal
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.role.models import Role
from app.domains.user import queries as user_queries
from app.domains.user.exceptions import EmailTaken, UserNotFound, WrongPassword
from app.domains.user.models import User, user_roles
from app.domains.user.schemas import (
    PasswordChange,
    UserCreate,
    UserRead,
    UserSelfUpdate,
    UserUpdate,
)

AUDITED = Audited(
    "user",
    fields=(
        "email",
        "full_name",
        "job_title",
        "is_active",
        "is_superuser",
        "department_id",
        "location_id",
    ),
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
    held = await auth_queries.load_authorization(session, user.id)
    if held is None:
        raise UserNotFound(f"User {user.id} does not exist.")
    delegation.ensure_within(
        actor, permissions=held.permissions, superuser=held.is_superuser, action=action
    )


async def _set_roles(session: AsyncSession, user_id: int, role_ids: Sequence[int]) -> None:
    await session.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
    if role_ids:
        await session.execute(
            user_roles.insert(), [{"user_id": user_id, "role_id": rid} for rid in set(role_ids)]
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
    session: AsyncSession, *, data: UserCreate, actor: Principal | None, auth: AuthContext
) -> UserRead:
    """Create an account holding nothing beyond what its creator holds.

    A service account (no password) is a superuser's to create.
    """
    if actor is not None:
        if data.service_account and not actor.is_superuser:
            raise Forbidden("Only a superuser creates a service account.")
        await _ensure_grantable(
            session,
            actor,
            role_ids=data.role_ids,
            superuser=data.is_superuser,
            action="create this user",
        )
    if data.password is not None:
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
        password_hash=await auth.passwords.hash(data.password) if data.password else None,
        created_by_id=actor.user_id if actor else None,
    )
    async with AUDITED.creating(session, user, actor=actor) as change:
        await _set_roles(session, user.id, data.role_ids)
        change.links("role_ids", [], data.role_ids)
    return await user_queries.read(session, user)


async def _authorize_update(
    session: AsyncSession, actor: Principal, *, user: User, changes: dict[str, Any]
) -> None:
    """The account is within the actor's reach before and after; one's own password is not."""
    if "password" in changes:
        if actor.api_token_id is not None:
            raise RefusedToApiTokens("change passwords")
        if user.id == actor.user_id:
            raise Forbidden(
                "Change your own password with POST /api/v1/users/me/password, "
                "which asks for the current one."
            )
        if user.is_service_account:
            raise ValidationFailed(
                f"User {user.id} is a service account: it has no password, only API tokens."
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
    *,
    user: User,
    data: UserUpdate,
    actor: Principal,
    if_match: list[int] | None,
    auth: AuthContext,
) -> UserRead:
    """An administrator's partial update of an account (`role_ids` replaces the set)."""
    changes = sent_fields(data, required=("email", "full_name", "is_active", "is_superuser"))
    await _authorize_update(session, actor, user=user, changes=changes)
    async with AUDITED.updating(session, user, actor=actor, if_match=if_match) as change:
        if user.id == actor.user_id and changes.get("is_active") is False:
            raise Conflict("You cannot deactivate your own account.")
        role_ids = changes.pop("role_ids", None)
        password = changes.pop("password", None)
        if "email" in changes:
            await _email_free(session, changes["email"], except_id=user.id)
        await _check_placement(session, changes.get("department_id"), changes.get("location_id"))
        change.apply(changes)
        if password is not None:
            _check_password_policy(auth, password)
            user.password_hash = await auth.passwords.hash(password)
            change.changes["password_changed"] = [None, True]
        roles = None  # the roles held, while still current: the read model reuses them
        if role_ids is not None:
            roles = await user_queries.held_roles(session, user.id)
            if change.links("role_ids", [role["id"] for role in roles], role_ids):
                await _set_roles(session, user.id, role_ids)
                roles = None
    if change:
        if password is not None or changes.get("is_active") is False:
            await auth_service.end_all_sessions(session, auth, user_id=user.id)
        if changes.get("is_active") is False:
            await auth_service.revoke_all_api_tokens(session, auth, user_id=user.id, actor=actor)
        after_commit(session, lambda: auth.token_state.user_changed(user.id))
    return await user_queries.read(session, user, roles=roles)


async def update_self(session: AsyncSession, *, data: UserSelfUpdate, actor: Principal) -> UserRead:
    """Change one's own name and job title (nothing else goes through /users/me)."""
    changes = sent_fields(data, required=("full_name",))
    user = await user_queries.get_for_update(session, actor.user_id)
    async with AUDITED.updating(session, user, actor=actor, if_match=None) as change:
        change.apply(changes)
    return await user_queries.read(session, user)


async def change_password(
    session: AsyncSession, *, data: PasswordChange, actor: Principal, auth: AuthContext
) -> None:
    """Change one's own password and end every other session."""
    user = await user_queries.get_for_update(session, actor.user_id)
    if user.password_hash is None:
        raise ValidationFailed("A service account has no password to change.")
    # A wrong current password is a guess: it spends the account's login allowance.
    await auth.login_throttle.reserve(email=user.email)
    if not await auth.passwords.verify(user.password_hash, data.current_password):
        raise WrongPassword()
    await auth.login_throttle.release(email=user.email)
    _check_password_policy(auth, data.new_password)
    async with AUDITED.updating(session, user, actor=actor, if_match=None) as change:
        user.password_hash = await auth.passwords.hash(data.new_password)
        change.changes["password_changed"] = [None, True]
    await auth_service.end_all_sessions(
        session, auth, user_id=user.id, keep_session=actor.session_id
    )


async def delete(
    session: AsyncSession,
    *,
    user: User,
    actor: Principal,
    if_match: list[int] | None,
    auth: AuthContext,
) -> None:
    """Delete an account that never created anything (else 409: deactivate it instead)."""
    await _ensure_manageable(session, actor, user=user, action=f"delete user {user.id}")
    user_id = user.id
    async with AUDITED.deleting(session, user, actor=actor, if_match=if_match):
        if user_id == actor.user_id:
            raise Conflict("You cannot delete your own account.")
        # Explicitly, not by the foreign key's cascade: their cached copies must go too.
        await auth_service.delete_all_api_tokens(session, auth, user_id=user_id, actor=actor)
    await auth.token_state.end_sessions(user_id, auth.tokens.lifetime)
