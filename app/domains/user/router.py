from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import NOT_MODIFIED, IfMatch, IfNoneMatch, check_not_modified, set_etag
from app.domains.auth.context import AuthDep
from app.domains.user import queries as user_queries
from app.domains.user import service as user_service
from app.domains.user.dependencies import (
    LockedUser,
    PasswordChanger,
    SignedIn,
    UsersRead,
    UsersWrite,
)
from app.domains.user.models import User
from app.domains.user.schemas import (
    PasswordChange,
    UserCreate,
    UserFilters,
    UserRead,
    UserSelfUpdate,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"])

BEYOND_REACH = (
    "The caller lacks `users:write`, or the user holds (or would be granted) a permission the "
    "caller lacks, named in the detail; only a superuser acts on a superuser."
)


def _refusing(description: str, *statuses: int) -> dict[int | str, dict[str, Any]]:
    forbidden = {**AUTHENTICATED_ERRORS[403], "description": description}
    return {**AUTHENTICATED_ERRORS, **problem_responses(*statuses), 403: forbidden}


@router.get("", response_model=Page[UserRead], responses=AUTHENTICATED_ERRORS)
async def list_users(
    _: UsersRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[UserFilters, Query()],
) -> PageResult[UserRead]:
    """List users, filtered and keyset-paginated."""
    return await user_queries.list(session, filters=filters, page=page)


@router.post(
    "",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    responses=_refusing(f"{BEYOND_REACH} Only a superuser creates a service account.", 409),
)
async def create_user(
    actor: UsersWrite, data: UserCreate, session: SessionDep, auth: AuthDep, response: Response
) -> UserRead:
    """Create a user account."""
    user = await user_service.create(session, data=data, actor=actor, auth=auth)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    set_etag(response, user.version)
    return user


@router.get("/me", response_model=UserRead, responses={**AUTHENTICATED_ERRORS, **NOT_MODIFIED})
async def read_me(
    principal: SignedIn, session: SessionDep, cached: IfNoneMatch, response: Response
) -> UserRead:
    """The signed-in user's own account."""
    await check_not_modified(session, User, principal.user_id, if_none_match=cached)
    user = await user_queries.get(session, principal.user_id)
    set_etag(response, user.version)
    return await user_queries.read(session, user)


@router.patch("/me", response_model=UserRead, responses=AUTHENTICATED_ERRORS)
async def update_me(
    principal: SignedIn, data: UserSelfUpdate, session: SessionDep, response: Response
) -> UserRead:
    """Change one's own full name or job title (nothing else)."""
    user = await user_service.update_self(session, data=data, actor=principal)
    set_etag(response, user.version)
    return user


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_refusing("Called with an API token: API tokens cannot change passwords."),
)
async def change_my_password(
    principal: PasswordChanger, data: PasswordChange, session: SessionDep, auth: AuthDep
) -> None:
    """Change one's own password; every other session ends."""
    await user_service.change_password(session, data=data, actor=principal, auth=auth)


# `:int` keeps `/users/me` away from these routes: `DELETE /users/me` is a 405, not a 422.
@router.get(
    "/{user_id:int}",
    response_model=UserRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404), **NOT_MODIFIED},
)
async def read_user(
    _: UsersRead,
    user_id: EntityId,
    session: SessionDep,
    cached: IfNoneMatch,
    response: Response,
) -> UserRead:
    """One user."""
    await check_not_modified(session, User, user_id, if_none_match=cached)
    user = await user_queries.get(session, user_id)
    set_etag(response, user.version)
    return await user_queries.read(session, user)


@router.patch(
    "/{user_id:int}",
    response_model=UserRead,
    responses=_refusing(
        f"{BEYOND_REACH} A caller's own `password` is refused too: "
        "they change it with POST /users/me/password.",
        404,
        409,
        412,
    ),
)
async def update_user(
    actor: UsersWrite,
    user: LockedUser,
    data: UserUpdate,
    session: SessionDep,
    auth: AuthDep,
    expected: IfMatch,
    response: Response,
) -> UserRead:
    """Update a user; `role_ids`, when present, replaces their roles."""
    updated = await user_service.update(
        session, user=user, data=data, actor=actor, if_match=expected, auth=auth
    )
    set_etag(response, updated.version)
    return updated


@router.delete(
    "/{user_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_refusing(BEYOND_REACH, 404, 409, 412),
)
async def delete_user(
    actor: UsersWrite, user: LockedUser, session: SessionDep, auth: AuthDep, expected: IfMatch
) -> None:
    """Delete a user who created nothing (else 409: deactivate them with PATCH instead)."""
    await user_service.delete(session, user=user, actor=actor, if_match=expected, auth=auth)
