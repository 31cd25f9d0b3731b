"""Who is calling, and may they: one dependency per route states what it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.core.database import SessionDep
from app.core.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.core.logging import user_id_var
from app.core.redis import REDIS_UNREACHABLE
from app.core.security import AccessClaims, InvalidToken
from app.domains.auth.callers import prefetched_values
from app.domains.auth.context import AuthContext, AuthDep
from app.domains.auth.permissions import PERMISSIONS
from app.domains.auth.principal import Principal
from app.domains.auth.queries import load_authorization
from app.domains.auth.token_state import TokenState

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def current_principal(
    request: Request,
    auth: AuthDep,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """Check the bearer token: signature and claims, then its state in Redis."""
    if not token:
        raise Unauthorized("Not authenticated.")
    try:
        claims = auth.tokens.decode(token)
    except InvalidToken:
        raise Unauthorized("The access token is invalid or has expired.") from None
    try:
        state = await _token_state(request, auth, claims)
    except REDIS_UNREACHABLE:
        # Fail closed: without the deny list a revoked token could pass.
        raise ServiceUnavailable("Token checks are unavailable; retry shortly.") from None
    if state.revokes(issued_at=claims.issued_at, session_id=claims.session_id):
        raise Unauthorized("The access token has been revoked.")
    authorization = state.authorization
    if authorization is None:
        authorization = await load_authorization(session, claims.user_id)
        if authorization is None:
            raise Unauthorized("The access token has been revoked.")
        try:
            await auth.token_state.cache(claims.user_id, authorization, state.epoch)
        except REDIS_UNREACHABLE:
            raise ServiceUnavailable("Token checks are unavailable; retry shortly.") from None
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


Authenticated = Annotated[Principal, Depends(require(None))]
