"""Logins, refresh-token rotation with theft detection, ending sessions, and API tokens."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import after_commit, release_connection
from app.core.errors import Conflict, Forbidden, ValidationFailed
from app.core.lookups import unknown_ids
from app.core.metrics import AUTH_EVENTS
from app.core.redis import REDIS_UNREACHABLE
from app.core.security import hash_refresh_token, new_refresh_token
from app.domains.audit import service as audit_service
from app.domains.audit.service import Audited
from app.domains.auth import delegation
from app.domains.auth import queries as auth_queries
from app.domains.auth.context import AuthContext
from app.domains.auth.exceptions import InvalidCredentials, InvalidRefreshToken, RefreshTokenReused
from app.domains.auth.models import ApiToken, RefreshToken
from app.domains.auth.principal import Principal
from app.domains.auth.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenRead, TokenPair
from app.domains.auth.token_state import API_TOKEN_PREFIX, hash_api_token
from app.domains.user.models import User

logger = logging.getLogger("app.auth")

API_TOKENS = Audited(
    "api_token",
    fields=("user_id", "name", "prefix", "permissions", "expires_at", "revoked_at"),
)
# "pat_AbCd": enough to tell one's tokens apart, far too little to guess the rest.
API_TOKEN_SHOWN_CHARACTERS = 8


async def _issue_pair(
    session: AsyncSession, auth: AuthContext, *, user_id: int, family_id: uuid.UUID
) -> TokenPair:
    access_token, _ = auth.tokens.issue(user_id, family_id.hex)
    refresh_token = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user_id,
            family_id=family_id,
            token_hash=hash_refresh_token(refresh_token),
            expires_at=datetime.now(UTC) + timedelta(days=auth.settings.refresh_token_days),
        )
    )
    await session.flush()
    return TokenPair(
        access_token=access_token, refresh_token=refresh_token, expires_in=auth.tokens.lifetime
    )


async def login(
    session: AsyncSession, auth: AuthContext, *, email: str, password: str, client_ip: str
) -> TokenPair:
    """Exchange an email and password for a token pair starting a new refresh family."""
    email = email.strip().lower()
    # The failure is counted before argon2 runs, so concurrent guesses cannot outrun it.
    await auth.login_throttle.reserve(email=email, ip=client_ip)
    user = (
        await session.execute(
            select(User.id, User.password_hash, User.is_active).where(User.email == email)
        )
    ).one_or_none()
    # No pooled connection is held while argon2 runs: a queue of logins would otherwise
    # take the whole pool from everyone else. The read needs no atomicity with the writes.
    await release_connection(session)
    # Unknown emails, and service accounts (no password), are checked against a dummy hash,
    # so every failure costs the same.
    password_hash = user.password_hash if user is not None else None
    valid = await auth.passwords.verify(password_hash or auth.passwords.dummy_hash, password)
    if user is None or user.password_hash is None or not valid or not user.is_active:
        AUTH_EVENTS.labels(event="login_failure").inc()
        raise InvalidCredentials()
    await auth.login_throttle.release(email=email, ip=client_ip)
    if auth.passwords.needs_rehash(user.password_hash):
        rehashed = await auth.passwords.hash(password)
        # Only if the password did not change meanwhile.
        await session.execute(
            update(User)
            .where(User.id == user.id, User.password_hash == user.password_hash)
            .values(password_hash=rehashed)
        )
    AUTH_EVENTS.labels(event="login_success").inc()
    return await _issue_pair(session, auth, user_id=user.id, family_id=uuid.uuid4())


async def refresh(session: AsyncSession, auth: AuthContext, *, refresh_token: str) -> TokenPair:
    """Rotate a refresh token: revoke it and issue a new pair in the same family.

    The conditional UPDATE is the single point of truth: of two concurrent refreshes of
    one token, exactly one sees `revoked_at IS NULL`.
    """
    token_hash = hash_refresh_token(refresh_token)
    rotated = (
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > func.now(),
            )
            .values(revoked_at=func.now())
            .returning(RefreshToken.user_id, RefreshToken.family_id)
        )
    ).one_or_none()
    if rotated is None:
        known = (
            await session.execute(
                select(RefreshToken.family_id, RefreshToken.revoked_at).where(
                    RefreshToken.token_hash == token_hash
                )
            )
        ).one_or_none()
        if known is not None and known.revoked_at is not None:
            await revoke_family(session, family_id=known.family_id)
            AUTH_EVENTS.labels(event="reuse_detected").inc()
            await _deny_stolen_session(auth, session_id=known.family_id.hex)
            raise RefreshTokenReused()
        raise InvalidRefreshToken()
    active = await session.scalar(select(User.is_active).where(User.id == rotated.user_id))
    if not active:
        raise InvalidRefreshToken()
    AUTH_EVENTS.labels(event="refresh").inc()
    return await _issue_pair(session, auth, user_id=rotated.user_id, family_id=rotated.family_id)


async def _deny_stolen_session(auth: AuthContext, *, session_id: str) -> None:
    try:
        await auth.token_state.deny_session(session_id, auth.tokens.lifetime)
    except REDIS_UNREACHABLE as error:
        # The family's revocation must still commit: refreshing needs only PostgreSQL, so
        # a 503 here would leave the thief's newest refresh token working.
        logger.error(
            "reused refresh token: session %s revoked, but its access tokens could not be "
            "denied (%s); they pass until they expire once Redis is back",
            session_id,
            type(error).__name__,
        )


async def revoke_family(session: AsyncSession, *, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def logout(
    session: AsyncSession,
    auth: AuthContext,
    *,
    principal: Principal,
    refresh_token: str | None,
) -> None:
    """End this session: revoke its refresh family and refuse its access tokens."""
    families = {uuid.UUID(hex=principal.session_id)}
    if refresh_token:
        family_id = await session.scalar(
            select(RefreshToken.family_id).where(
                RefreshToken.token_hash == hash_refresh_token(refresh_token),
                RefreshToken.user_id == principal.user_id,
            )
        )
        if family_id is not None:
            families.add(family_id)
    for family_id in families:
        await revoke_family(session, family_id=family_id)
        await auth.token_state.deny_session(family_id.hex, auth.tokens.lifetime)
    AUTH_EVENTS.labels(event="logout").inc()


async def end_all_sessions(
    session: AsyncSession, auth: AuthContext, *, user_id: int, keep_session: str | None = None
) -> None:
    """Refuse every token the user holds now, access and refresh (but `keep_session`'s)."""
    statement = update(RefreshToken).where(
        RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
    )
    if keep_session is not None:
        statement = statement.where(RefreshToken.family_id != uuid.UUID(hex=keep_session))
    await session.execute(statement.values(revoked_at=func.now()))
    await auth.token_state.end_sessions(user_id, auth.tokens.lifetime, keep_session=keep_session)


async def logout_all(session: AsyncSession, auth: AuthContext, *, principal: Principal) -> None:
    """End every session of the signed-in user, and revoke every API token they hold."""
    await end_all_sessions(session, auth, user_id=principal.user_id)
    await revoke_all_api_tokens(session, auth, user_id=principal.user_id, actor=principal)


async def create_api_token(
    session: AsyncSession, auth: AuthContext, *, data: ApiTokenCreate, actor: Principal
) -> ApiTokenCreated:
    """A new API token within its owner's permissions; the answer is its only sight."""
    longest = auth.settings.api_token_max_days
    days = data.expires_in_days or longest
    if days > longest:
        raise ValidationFailed(
            f"An API token lives at most {longest} days.",
            extra={
                "errors": [
                    {
                        "loc": ["body", "expires_in_days"],
                        "msg": f"at most {longest}",
                        "type": "less_than_equal",
                    }
                ]
            },
        )
    owner_id = await _api_token_owner(session, data=data, actor=actor)
    most = auth.settings.api_tokens_max_per_user
    if await auth_queries.count_live_api_tokens_locked(session, owner_id) >= most:
        raise Conflict(
            f"User {owner_id} already holds {most} live API tokens, the most one account may "
            "(API_TOKENS_MAX_PER_USER); revoke one first."
        )
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    api_token = ApiToken(
        user_id=owner_id,
        name=data.name,
        prefix=token[:API_TOKEN_SHOWN_CHARACTERS],
        token_hash=hash_api_token(token),
        permissions=data.permissions,
        expires_at=datetime.now(UTC) + timedelta(days=days),
        last_used_at=None,
        revoked_at=None,
        created_by_id=actor.user_id,
    )
    async with API_TOKENS.creating(session, api_token, actor=actor):
        pass
    return ApiTokenCreated(**ApiTokenRead.model_validate(api_token).model_dump(), token=token)


async def _api_token_owner(session: AsyncSession, *, data: ApiTokenCreate, actor: Principal) -> int:
    """Whose token it is: the caller's, or a service account's (superusers only).

    Either way it holds nothing its owner does not hold now (and, when used, nothing its
    owner does not hold then).
    """
    if data.user_id is None or data.user_id == actor.user_id:
        delegation.ensure_within(
            actor, permissions=data.permissions, action="create this API token"
        )
        return actor.user_id
    if not actor.is_superuser:
        raise Forbidden(
            "Only a superuser creates an API token for another account (a service account)."
        )
    account = (
        await session.execute(
            select(User.password_hash, User.is_active).where(User.id == data.user_id)
        )
    ).one_or_none()
    if account is None:
        raise unknown_ids({"user_id": [data.user_id]})
    if account.password_hash is not None:
        raise ValidationFailed(
            f"User {data.user_id} is not a service account: people create their own API tokens."
        )
    if not account.is_active:
        raise Conflict(f"Service account {data.user_id} is deactivated.")
    held = await auth_queries.load_authorization(session, data.user_id)
    missing = (
        []
        if held is None or held.is_superuser
        else sorted(set(data.permissions) - held.permissions)
    )
    if missing:
        raise Forbidden(
            f"Service account {data.user_id} does not hold every permission of this token: "
            f"{', '.join(missing)}; grant it a role that does first."
        )
    return data.user_id


async def revoke_api_token(
    session: AsyncSession, auth: AuthContext, *, api_token: ApiToken, actor: Principal
) -> None:
    """Revoke one API token: refused from the next request on, in every worker."""
    async with API_TOKENS.updating(session, api_token, actor=actor, if_match=None) as change:
        change.apply({"revoked_at": datetime.now(UTC)})
    token_hash = api_token.token_hash
    after_commit(session, lambda: auth.token_state.revoke_api_tokens([token_hash]))


async def revoke_all_api_tokens(
    session: AsyncSession, auth: AuthContext, *, user_id: int, actor: Principal | None
) -> None:
    """Revoke every API token of a user (logout-all, deactivation), one audit event each."""
    now = datetime.now(UTC)
    revoked = (
        await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=func.now(), version=ApiToken.version + 1)
            .returning(ApiToken.id, ApiToken.token_hash)
        )
    ).all()
    await _record_all(session, revoked, "update", {"revoked_at": [None, now.isoformat()]}, actor)
    _forget_after_commit(session, auth, revoked)


async def delete_all_api_tokens(
    session: AsyncSession, auth: AuthContext, *, user_id: int, actor: Principal | None
) -> None:
    """Delete every API token of a user about to be deleted, one audit event each."""
    deleted = (
        await session.execute(
            delete(ApiToken)
            .where(ApiToken.user_id == user_id)
            .returning(ApiToken.id, ApiToken.token_hash)
        )
    ).all()
    await _record_all(session, deleted, "delete", {"user_id": [user_id, None]}, actor)
    _forget_after_commit(session, auth, deleted)


async def _record_all(
    session: AsyncSession,
    rows: Sequence[Row[int, str]],
    action: str,
    changes: dict[str, list[object]],
    actor: Principal | None,
) -> None:
    # One statement changed them all: `Audited` writes one row at a time, so the events
    # are recorded here (they are inserted together, at the next flush).
    for row in rows:
        await audit_service.record(
            session,
            actor_id=actor.user_id if actor is not None else None,
            action=action,
            entity_type=API_TOKENS.entity_type,
            entity_id=row.id,
            changes=changes,
        )


def _forget_after_commit(
    session: AsyncSession, auth: AuthContext, rows: Sequence[Row[int, str]]
) -> None:
    hashes = [row.token_hash for row in rows]
    if hashes:
        after_commit(session, lambda: auth.token_state.revoke_api_tokens(hashes))


async def record_api_token_use(session: AsyncSession, *, token_id: int) -> None:
    """Set `last_used_at` (not a change of the token: no new version, no audit event)."""
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .values(last_used_at=func.now(), updated_at=ApiToken.updated_at)
    )
