from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.domains.auth import service as auth_service
from app.domains.auth.context import AuthDep
from app.domains.auth.dependencies import Authenticated
from app.domains.auth.permissions import CATALOGUE
from app.domains.auth.schemas import LogoutRequest, PermissionRead, RefreshRequest, TokenPair

router = APIRouter(tags=["auth"])


async def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def not_stored(response: Response) -> None:
    """Tokens must not be kept by any cache (RFC 6749, section 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@router.post(
    "/auth/token",
    response_model=TokenPair,
    responses=problem_responses(401, 429, 503),
    dependencies=[Depends(not_stored)],
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    auth: AuthDep,
    ip: Annotated[str, Depends(client_ip)],
) -> TokenPair:
    """Sign in with email (`username`) and password: an access and a refresh token."""
    return await auth_service.login(
        session, auth, email=form.username, password=form.password, client_ip=ip
    )


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses=problem_responses(401, 503),
    dependencies=[Depends(not_stored)],
)
async def refresh_token(data: RefreshRequest, session: SessionDep, auth: AuthDep) -> TokenPair:
    """Trade a refresh token for a new pair; a reused token revokes its whole family."""
    return await auth_service.refresh(session, auth, refresh_token=data.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=AUTHENTICATED_ERRORS)
async def logout(
    principal: Authenticated,
    session: SessionDep,
    auth: AuthDep,
    data: Annotated[LogoutRequest | None, Body()] = None,
) -> None:
    """End this session: the access token stops working at once, its refresh family too."""
    await auth_service.logout(
        session, auth, principal=principal, refresh_token=data.refresh_token if data else None
    )


@router.post(
    "/auth/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=AUTHENTICATED_ERRORS
)
async def logout_all(principal: Authenticated, session: SessionDep, auth: AuthDep) -> None:
    """End every session of the signed-in user."""
    await auth_service.end_all_sessions(session, auth, user_id=principal.user_id)


@router.get("/permissions", response_model=list[PermissionRead], responses=AUTHENTICATED_ERRORS)
async def list_permissions(_: Authenticated) -> list[PermissionRead]:
    """The permission catalogue that roles draw from."""
    return [PermissionRead(code=code, description=text) for code, text in CATALOGUE.items()]
