"""Who is calling, and may they: one dependency per route states what it needs."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import SessionDep, primary_session
from app.core.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.core.logging import user_id_var
from app.core.lookups import EntityId
from app.core.redis import REDIS_UNREACHABLE
from app.core.security import AccessClaims, InvalidToken
from app.domains.auth import queries as auth_queries
from app.domains.auth import service as auth_service
from app.domains.auth.callers import prefetched_values
from app.domains.auth.context import AuthContext, AuthDep
from app.domains.auth.exceptions import RefusedToApiTokens
from app.domains.auth.models import ApiToken
from app.domains.auth.permissions import PERMISSIONS
from app.domains.auth.principal import Principal
from app.domains.auth.queries import load_authorization
from app.domains.auth.schemas import ApiTokenFilters
from app.domains.auth.token_state import (
    ApiTokenRecord,
    ApiTokenState,
    Authorization,
    TokenState,
    hash_api_token,
    is_api_token,
)

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
REVOKED = "The access token has been revoked."
INVALID_API_TOKEN = "The API token is invalid, expired or revoked."  # noqa: S105 (a message)


async def current_principal(
    request: Request,
    auth: AuthDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """Check the bearer token: signature and claims, then its state in Redis.

    An API token (`pat_...`) is checked by its cached row and its owner's state instead.
    """
    if not token:
        raise Unauthorized("Not authenticated.")
    if is_api_token(token):
        return await _api_token_principal(request, auth, session, token)
    try:
        claims = auth.tokens.decode(token)
    except InvalidToken:
        raise Unauthorized("The access token is invalid or has expired.") from None
    try:
        state = await _token_state(request, auth, claims)
        if state.revokes(issued_at=claims.issued_at, session_id=claims.session_id):
            raise Unauthorized(REVOKED)
        authorization = await _authorization(
            request, session, auth, claims.user_id, state.authorization, state.epoch
        )
    except REDIS_UNREACHABLE:
        # Fail closed: without the deny list a revoked token could pass.
        raise ServiceUnavailable("Token checks are unavailable; retry shortly.") from None
    if authorization is None:
        raise Unauthorized(REVOKED)
    if not authorization.is_active:
        raise Unauthorized("The account is deactivated.")
    user_id_var.set(claims.user_id)
    return Principal(
        user_id=claims.user_id,
        is_superuser=authorization.is_superuser,
        permissions=authorization.permissions,
        session_id=claims.session_id,
        jti=claims.jti,
        expires_at=claims.expires_at,
    )


async def _token_state(request: Request, auth: AuthContext, claims: AccessClaims) -> TokenState:
    # The rate limiter read the same keys moments ago, in its own round trip.
    values = prefetched_values(request.scope, claims.jti)
    if values is not None:
        return auth.token_state.parse(values)
    return await auth.token_state.read(claims)


async def _authorization(
    request: Request,
    session: AsyncSession,
    auth: AuthContext,
    user_id: int,
    cached: Authorization | None,
    epoch: str,
) -> Authorization | None:
    """The user's cached authorization, else the primary's, cached at the epoch read before."""
    if cached is not None:
        return cached
    async with primary_session(request, session) as primary:
        authorization = await load_authorization(primary, user_id)
    if authorization is not None:
        await auth.token_state.cache(user_id, authorization, epoch)
    return authorization


async def _api_token_principal(
    request: Request, auth: AuthContext, session: AsyncSession, token: str
) -> Principal:
    token_hash = hash_api_token(token)
    owners = auth.callers.api_token_owners
    authorization: Authorization | None = None
    try:
        checked = await _api_token(request, auth, session, token_hash)
        if checked is not None:
            record, state = checked
            authorization = await _authorization(
                request, session, auth, record.user_id, state.authorization, state.epoch
            )
    except REDIS_UNREACHABLE:
        raise ServiceUnavailable("Token checks are unavailable; retry shortly.") from None
    if checked is None or authorization is None or record.expires_at <= time.time():
        owners.forget(token_hash)
        raise Unauthorized(INVALID_API_TOKEN)
    if not authorization.is_active:
        owners.forget(token_hash)
        raise Unauthorized("The account is deactivated.")
    owners.remember(token_hash, record.user_id)
    if not state.used_recently:
        await _record_use(request, auth, token_hash, record.id)
    user_id_var.set(record.user_id)
    held = PERMISSIONS if authorization.is_superuser else authorization.permissions
    return Principal(
        user_id=record.user_id,
        is_superuser=False,
        permissions=record.permissions & held,
        session_id="",
        jti="",
        expires_at=int(record.expires_at),
        api_token_id=record.id,
    )


async def _api_token(
    request: Request, auth: AuthContext, session: AsyncSession, token_hash: str
) -> tuple[ApiTokenRecord, ApiTokenState] | None:
    """The unrevoked token's record and its state in Redis; None for a token that does not pass.

    Expiry and the owner's account are for the caller to check.
    """
    owner = auth.callers.api_token_owners.get(token_hash)
    # Known owner: the rate limiter read the token's and its owner's keys in its round trip.
    values = prefetched_values(request.scope, token_hash) if owner is not None else None
    if values is None:
        if owner is None:
            owner = await _api_token_owner(request, auth, session, token_hash)
            if owner is None:
                return None
        values = await auth.token_state.read_api_token(token_hash, owner)
    state = auth.token_state.parse_api_token(values)
    if state.token.revoked:
        return None
    record = state.token.record
    if record is None:
        async with primary_session(request, session) as primary:
            record = await auth_queries.api_token_record(primary, token_hash)
        if record is None:
            return None
        await auth.token_state.cache_api_token(token_hash, record)
    if record.user_id != owner:  # the keys read were another user's: never trust them
        return None
    return record, state


async def _api_token_owner(
    request: Request, auth: AuthContext, session: AsyncSession, token_hash: str
) -> int | None:
    """The owner of a token this process has not checked yet: Redis's copy, else the primary's."""
    cached = await auth.token_state.cached_api_token(token_hash)
    if cached.revoked:
        return None
    if cached.record is not None:
        return cached.record.user_id
    async with primary_session(request, session) as primary:
        record = await auth_queries.api_token_record(primary, token_hash)
    if record is None:
        return None
    await auth.token_state.cache_api_token(token_hash, record)
    return record.user_id


async def _record_use(request: Request, auth: AuthContext, token_hash: str, token_id: int) -> None:
    """Write `last_used_at`, if no request did in the last minute (in any worker)."""
    try:
        claimed = await auth.token_state.claim_api_token_use(token_hash)
    except REDIS_UNREACHABLE:
        raise ServiceUnavailable("Token checks are unavailable; retry shortly.") from None
    if not claimed:
        return
    # In a transaction of its own, committed at once: the request's may run long, and must
    # not hold this row's lock meanwhile (a revocation would queue behind it).
    sessionmaker: async_sessionmaker[AsyncSession] = request.state.sessionmaker
    async with sessionmaker() as own, own.begin():
        await auth_service.record_api_token_use(own, token_id=token_id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(permission: str | None) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits callers holding `permission` (None: any signed-in user)."""
    if permission is not None and permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def check(principal: CurrentPrincipal) -> Principal:
        if permission is not None and not principal.can(permission):
            raise Forbidden(f"This needs the {permission!r} permission.")
        return principal

    check.__permission__ = permission or "authenticated"  # type: ignore[attr-defined]
    return check


def require_password_session(action: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits any signed-in user but not an API token, which cannot `action`."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.api_token_id is not None:
            raise RefusedToApiTokens(action)
        return principal

    check.__permission__ = "authenticated"  # type: ignore[attr-defined]
    return check


async def refuse_api_token_bearer(request: Request) -> None:
    """Sessions are not an API token's business: one sent along is refused (403)."""
    _, _, token = request.headers.get("authorization", "").partition(" ")
    if is_api_token(token.strip()):
        raise RefusedToApiTokens("manage sessions")


Authenticated = Annotated[Principal, Depends(require(None))]
SessionManager = Annotated[Principal, Depends(require_password_session("manage sessions"))]
ApiTokenCreator = Annotated[Principal, Depends(require_password_session("create API tokens"))]


async def api_token_for_update(
    api_token_id: EntityId, principal: Authenticated, session: SessionDep
) -> ApiToken:
    """The caller's API token (anyone's, for a superuser), locked until the request ends."""
    return await auth_queries.get_api_token_for_update(session, api_token_id, actor=principal)


async def listed_tokens_owner(
    principal: Authenticated, filters: Annotated[ApiTokenFilters, Query()]
) -> int:
    """Whose API tokens to list: the caller's own, or anyone's for a superuser."""
    if filters.user_id is None or filters.user_id == principal.user_id:
        return principal.user_id
    if not principal.is_superuser:
        raise Forbidden("Only a superuser lists the API tokens of another user.")
    return filters.user_id


LockedApiToken = Annotated[ApiToken, Depends(api_token_for_update)]
ListedTokensOwner = Annotated[int, Depends(listed_tokens_owner)]
