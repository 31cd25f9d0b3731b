from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import NOT_MODIFIED, IfMatch, IfNoneMatch, check_not_modified, set_etag
from app.domains.process import queries as process_queries
from app.domains.process import service as process_service
from app.domains.process.dependencies import LockedProcess, ProcessesRead, ProcessesWrite
from app.domains.process.models import Process
from app.domains.process.schemas import ProcessCreate, ProcessFilters, ProcessRead, ProcessUpdate

router = APIRouter(prefix="/processes", tags=["processes"])
reverse_router = APIRouter(tags=["processes"])


@router.get("", response_model=Page[ProcessRead], responses=AUTHENTICATED_ERRORS)
async def list_processes(
    _: ProcessesRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[ProcessFilters, Query()],
) -> PageResult[ProcessRead]:
    """List processes with their links, filtered and keyset-paginated."""
    return await process_queries.list(session, filters=filters, page=page)


@router.post(
    "",
    response_model=ProcessRead,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(409)},
)
async def create_process(
    actor: ProcessesWrite, data: ProcessCreate, session: SessionDep, response: Response
) -> ProcessRead:
    """Create a process and link it to departments, locations, resources and roles."""
    process = await process_service.create(session, data=data, actor=actor)
    response.headers["Location"] = f"/api/v1/processes/{process.id}"
    set_etag(response, process.version)
    return process


@router.get(
    "/{process_id:id}",
    response_model=ProcessRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404), **NOT_MODIFIED},
)
async def read_process(
    _: ProcessesRead,
    process_id: EntityId,
    session: SessionDep,
    cached: IfNoneMatch,
    response: Response,
) -> ProcessRead:
    """One process with owner, author and link summaries."""
    await check_not_modified(session, Process, process_id, if_none_match=cached)
    # One statement, which also answers the 404: no loader of the row before it.
    process = await process_queries.read(session, process_id)
    set_etag(response, process.version)
    return process


@router.patch(
    "/{process_id:id}",
    response_model=ProcessRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def update_process(
    actor: ProcessesWrite,
    process: LockedProcess,
    data: ProcessUpdate,
    session: SessionDep,
    expected: IfMatch,
    response: Response,
) -> ProcessRead:
    """Update a process; link lists that are present replace the current set."""
    updated = await process_service.update(
        session, process=process, data=data, actor=actor, if_match=expected
    )
    set_etag(response, updated.version)
    return updated


@router.post(
    "/{process_id:id}/review",
    response_model=ProcessRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 412)},
)
async def review_process(
    actor: ProcessesWrite,
    process: LockedProcess,
    session: SessionDep,
    expected: IfMatch,
    response: Response,
) -> ProcessRead:
    """Mark a process reviewed now; its next review is due one review interval later."""
    reviewed = await process_service.review(
        session, process=process, actor=actor, if_match=expected
    )
    set_etag(response, reviewed.version)
    return reviewed


@router.delete(
    "/{process_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 412)},
)
async def delete_process(
    actor: ProcessesWrite, process: LockedProcess, session: SessionDep, expected: IfMatch
) -> None:
    """Delete a process and its links."""
    await process_service.delete(session, process=process, actor=actor, if_match=expected)


LINKED_RESPONSES = {**AUTHENTICATED_ERRORS, **problem_responses(404)}


@reverse_router.get(
    "/departments/{department_id:id}/processes",
    response_model=Page[ProcessRead],
    responses=LINKED_RESPONSES,
)
async def list_department_processes(
    _: ProcessesRead, department_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[ProcessRead]:
    """Processes linked to a department, keyset-paginated."""
    return await process_queries.list_linked(
        session, link=process_queries.DEPARTMENTS, target_id=department_id, page=page
    )


@reverse_router.get(
    "/locations/{location_id:id}/processes",
    response_model=Page[ProcessRead],
    responses=LINKED_RESPONSES,
)
async def list_location_processes(
    _: ProcessesRead, location_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[ProcessRead]:
    """Processes linked to a location, keyset-paginated."""
    return await process_queries.list_linked(
        session, link=process_queries.LOCATIONS, target_id=location_id, page=page
    )


@reverse_router.get(
    "/resources/{resource_id:id}/processes",
    response_model=Page[ProcessRead],
    responses=LINKED_RESPONSES,
)
async def list_resource_processes(
    _: ProcessesRead, resource_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[ProcessRead]:
    """Processes that use a resource, keyset-paginated."""
    return await process_queries.list_linked(
        session, link=process_queries.RESOURCES, target_id=resource_id, page=page
    )


@reverse_router.get(
    "/roles/{role_id:id}/processes",
    response_model=Page[ProcessRead],
    responses=LINKED_RESPONSES,
)
async def list_role_processes(
    _: ProcessesRead, role_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[ProcessRead]:
    """Processes a role takes part in, keyset-paginated."""
    return await process_queries.list_linked(
        session, link=process_queries.ROLES, target_id=role_id, page=page
    )
