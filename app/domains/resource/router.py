from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import NOT_MODIFIED, IfMatch, IfNoneMatch, check_not_modified, set_etag
from app.domains.resource import queries as resource_queries
from app.domains.resource import service as resource_service
from app.domains.resource.dependencies import (
    LockedResource,
    ResourcesRead,
    ResourcesWrite,
)
from app.domains.resource.models import Resource
from app.domains.resource.schemas import (
    ResourceCreate,
    ResourceFilters,
    ResourceRead,
    ResourceUpdate,
)

router = APIRouter(prefix="/resources", tags=["resources"])


@router.get("", response_model=Page[ResourceRead], responses=AUTHENTICATED_ERRORS)
async def list_resources(
    _: ResourcesRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[ResourceFilters, Query()],
) -> PageResult[ResourceRead]:
    """List resources, filtered and keyset-paginated."""
    return await resource_queries.list(session, filters=filters, page=page)


@router.post(
    "",
    response_model=ResourceRead,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(422)},
)
async def create_resource(
    actor: ResourcesWrite, data: ResourceCreate, session: SessionDep, response: Response
) -> ResourceRead:
    """Create a resource, optionally kept at a location and owned by a department."""
    resource = await resource_service.create(session, data=data, actor=actor)
    response.headers["Location"] = f"/api/v1/resources/{resource.id}"
    set_etag(response, resource.version)
    return resource


@router.get(
    "/{resource_id:id}",
    response_model=ResourceRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404), **NOT_MODIFIED},
)
async def read_resource(
    _: ResourcesRead,
    resource_id: EntityId,
    session: SessionDep,
    cached: IfNoneMatch,
    response: Response,
) -> ResourceRead:
    """One resource, with its location and owning department."""
    await check_not_modified(session, Resource, resource_id, if_none_match=cached)
    resource = await resource_queries.get(session, resource_id)
    set_etag(response, resource.version)
    return await resource_queries.read(session, resource)


@router.patch(
    "/{resource_id:id}",
    response_model=ResourceRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 412, 422)},
)
async def update_resource(
    actor: ResourcesWrite,
    resource: LockedResource,
    data: ResourceUpdate,
    session: SessionDep,
    expected: IfMatch,
    response: Response,
) -> ResourceRead:
    """Update a resource; a null `location_id` or `department_id` unlinks it."""
    updated = await resource_service.update(
        session, resource=resource, data=data, actor=actor, if_match=expected
    )
    set_etag(response, updated.version)
    return updated


@router.delete(
    "/{resource_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 412)},
)
async def delete_resource(
    actor: ResourcesWrite, resource: LockedResource, session: SessionDep, expected: IfMatch
) -> None:
    """Delete a resource; processes that used it stop listing it."""
    await resource_service.delete(session, resource=resource, actor=actor, if_match=expected)
