from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import NOT_MODIFIED, IfMatch, IfNoneMatch, check_not_modified, set_etag
from app.domains.location import queries as location_queries
from app.domains.location import service as location_service
from app.domains.location.dependencies import (
    LocationsRead,
    LocationsWrite,
    LockedLocation,
)
from app.domains.location.models import Location
from app.domains.location.schemas import (
    LocationCreate,
    LocationFilters,
    LocationNode,
    LocationRead,
    LocationUpdate,
)

router = APIRouter(prefix="/locations", tags=["locations"])


@router.get("", response_model=Page[LocationRead], responses=AUTHENTICATED_ERRORS)
async def list_locations(
    _: LocationsRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[LocationFilters, Query()],
) -> PageResult[LocationRead]:
    """List locations, filtered and keyset-paginated."""
    return await location_queries.list(session, filters=filters, page=page)


@router.post(
    "",
    response_model=LocationRead,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(409)},
)
async def create_location(
    actor: LocationsWrite, data: LocationCreate, session: SessionDep, response: Response
) -> LocationRead:
    """Create a location, at the top level or under a parent."""
    location = await location_service.create(session, data=data, actor=actor)
    response.headers["Location"] = f"/api/v1/locations/{location.id}"
    set_etag(response, location.version)
    return location


@router.get(
    "/{location_id:id}",
    response_model=LocationRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404), **NOT_MODIFIED},
)
async def read_location(
    _: LocationsRead,
    location_id: EntityId,
    session: SessionDep,
    cached: IfNoneMatch,
    response: Response,
) -> LocationRead:
    """One location."""
    await check_not_modified(session, Location, location_id, if_none_match=cached)
    location = await location_queries.get(session, location_id)
    set_etag(response, location.version)
    return await location_queries.read(session, location)


@router.get(
    "/{location_id:id}/tree",
    response_model=LocationNode,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404)},
)
async def read_location_tree(
    _: LocationsRead, location_id: EntityId, session: SessionDep
) -> LocationNode:
    """A location and all its descendants, nested under `children`."""
    return await location_queries.subtree(session, location_id)


@router.patch(
    "/{location_id:id}",
    response_model=LocationRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def update_location(
    actor: LocationsWrite,
    location: LockedLocation,
    data: LocationUpdate,
    session: SessionDep,
    expected: IfMatch,
    response: Response,
) -> LocationRead:
    """Update a location; in `address` only the parts sent change."""
    updated = await location_service.update(
        session, location=location, data=data, actor=actor, if_match=expected
    )
    set_etag(response, updated.version)
    return updated


@router.delete(
    "/{location_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def delete_location(
    actor: LocationsWrite, location: LockedLocation, session: SessionDep, expected: IfMatch
) -> None:
    """Delete a location with no children, users or resources; process links go with it."""
    await location_service.delete(session, location=location, actor=actor, if_match=expected)
