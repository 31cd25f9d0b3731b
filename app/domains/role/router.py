from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import NOT_MODIFIED, IfMatch, IfNoneMatch, check_not_modified, set_etag
from app.domains.auth.context import AuthDep
from app.domains.role import queries as role_queries
from app.domains.role import service as role_service
from app.domains.role.dependencies import LockedRole, RolesRead, RolesWrite
from app.domains.role.models import Role
from app.domains.role.schemas import RoleCreate, RoleFilters, RoleRead, RoleUpdate

router = APIRouter(prefix="/roles", tags=["roles"])


@router.get("", response_model=Page[RoleRead], responses=AUTHENTICATED_ERRORS)
async def list_roles(
    _: RolesRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[RoleFilters, Query()],
) -> PageResult[RoleRead]:
    """List roles, filtered and keyset-paginated."""
    return await role_queries.list(session, filters=filters, page=page)


@router.post(
    "",
    response_model=RoleRead,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(409)},
)
async def create_role(
    actor: RolesWrite, data: RoleCreate, session: SessionDep, response: Response
) -> RoleRead:
    """Create a role with permissions the caller holds."""
    role = await role_service.create(session, data=data, actor=actor)
    response.headers["Location"] = f"/api/v1/roles/{role.id}"
    set_etag(response, role.version)
    return role


@router.get(
    "/{role_id:id}",
    response_model=RoleRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404), **NOT_MODIFIED},
)
async def read_role(
    _: RolesRead,
    role_id: EntityId,
    session: SessionDep,
    cached: IfNoneMatch,
    response: Response,
) -> RoleRead:
    """One role."""
    await check_not_modified(session, Role, role_id, if_none_match=cached)
    role = await role_queries.get(session, role_id)
    set_etag(response, role.version)
    return await role_queries.read(session, role)


@router.patch(
    "/{role_id:id}",
    response_model=RoleRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def update_role(
    actor: RolesWrite,
    role: LockedRole,
    data: RoleUpdate,
    session: SessionDep,
    auth: AuthDep,
    expected: IfMatch,
    response: Response,
) -> RoleRead:
    """Update a role; its holders' permissions change on their next request."""
    updated = await role_service.update(
        session, role=role, data=data, actor=actor, if_match=expected, auth=auth
    )
    set_etag(response, updated.version)
    return updated


@router.delete(
    "/{role_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def delete_role(
    actor: RolesWrite, role: LockedRole, session: SessionDep, auth: AuthDep, expected: IfMatch
) -> None:
    """Delete a role that no user holds."""
    await role_service.delete(session, role=role, actor=actor, if_match=expected, auth=auth)
