from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.pagination import Page, PageParamsDep, PageResult
from app.domains.auth import queries as auth_queries
from app.domains.auth import service as auth_service
from app.domains.auth.context import AuthDep
from app.domains.auth.dependencies import (
    ApiTokenCreator,
    Authenticated,
    ListedTokensOwner,
    LockedApiToken,
    SessionManager,
    refuse_api_token_bearer,
)
from app.domains.auth.permissions import CATALOGUE
from app.domains.auth.schemas import (
    ApiTokenCreate,
    ApiTokenCreated,
    ApiTokenRead,
    LogoutRequest,
    PermissionRead,
    RefreshRequest,
    TokenPair,
)

router = APIRouter(tags=["auth"])

NOT_FOR_API_TOKENS: dict[int | str, dict[str, Any]] = {
    403: {
        **AUTHENTICATED_ERRORS[403],
        "description": "Called with an API token: sessions are managed by signing in.",
    }
}


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
    responses={**problem_responses(401, 503), **NOT_FOR_API_TOKENS},
    dependencies=[Depends(refuse_api_token_bearer), Depends(not_stored)],
)
async def refresh_token(data: RefreshRequest, session: SessionDep, auth: AuthDep) -> TokenPair:
    """Trade a refresh token for a new pair; a reused token revokes its whole family."""
    return await auth_service.refresh(session, auth, refresh_token=data.refresh_token)


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **NOT_FOR_API_TOKENS},
)
async def logout(
    principal: SessionManager,
    session: SessionDep,
    auth: AuthDep,
    data: Annotated[LogoutRequest | None, Body()] = None,
) -> None:
    """End this session: the access token stops working at once, its refresh family too."""
    await auth_service.logout(
        session, auth, principal=principal, refresh_token=data.refresh_token if data else None
    )


@router.post(
    "/auth/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **NOT_FOR_API_TOKENS},
)
async def logout_all(principal: SessionManager, session: SessionDep, auth: AuthDep) -> None:
    """End every session of the signed-in user and revoke every API token they hold."""
    await auth_service.logout_all(session, auth, principal=principal)


@router.get("/permissions", response_model=list[PermissionRead], responses=AUTHENTICATED_ERRORS)
async def list_permissions(_: Authenticated) -> list[PermissionRead]:
    """The permission catalogue that roles draw from."""
    return [PermissionRead(code=code, description=text) for code, text in CATALOGUE.items()]


@router.post(
    "/api-tokens",
    response_model=ApiTokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        **AUTHENTICATED_ERRORS,
        403: {
            **AUTHENTICATED_ERRORS[403],
            "description": "A permission the owner lacks (named in the detail), a token for "
            "another account than a service account, or an API token as the caller.",
        },
        **problem_responses(409),
    },
    dependencies=[Depends(not_stored)],
)
async def create_api_token(
    actor: ApiTokenCreator, data: ApiTokenCreate, session: SessionDep, auth: AuthDep
) -> ApiTokenCreated:
    """Create an API token for scripts: the answer shows the token once, never again."""
    return await auth_service.create_api_token(session, auth, data=data, actor=actor)


@router.get("/api-tokens", response_model=Page[ApiTokenRead], responses=AUTHENTICATED_ERRORS)
async def list_api_tokens(
    owner_id: ListedTokensOwner, session: SessionDep, page: PageParamsDep
) -> PageResult[ApiTokenRead]:
    """List your API tokens (a superuser: anyone's, with `user_id`); never the tokens."""
    return await auth_queries.list_api_tokens(session, user_id=owner_id, page=page)


@router.delete(
    "/api-tokens/{api_token_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404)},
)
async def revoke_api_token(
    actor: Authenticated, api_token: LockedApiToken, session: SessionDep, auth: AuthDep
) -> None:
    """Revoke an API token: refused from the next request on (404: not yours)."""
    await auth_service.revoke_api_token(session, auth, api_token=api_token, actor=actor)
