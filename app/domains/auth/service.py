"""Logins, refresh-token rotation with theft detection, and ending sessions."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import release_connection
from app.core.metrics import AUTH_EVENTS
from app.core.redis import REDIS_UNREACHABLE
from app.core.security import hash_refresh_token, new_refresh_token
from app.domains.auth.context import AuthContext
from app.domains.auth.exceptions import InvalidCredentials, InvalidRefreshToken, RefreshTokenReused
from app.domains.auth.models import RefreshToken
from app.domains.auth.principal import Principal
from app.domains.auth.schemas import TokenPair
from app.domains.user.models import User

logger = logging.getLogger("app.auth")


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
    # Unknown emails are checked against a dummy hash, so every failure costs the same.
    password_hash = user.password_hash if user is not None else auth.passwords.dummy_hash
    valid = await auth.passwords.verify(password_hash, password)
    if user is None or not valid or not user.is_active:
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
