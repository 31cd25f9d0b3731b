from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import Row

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId, get_or_raise
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import IfMatch, set_etag
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process import service as process_service
from app.domains.process.dependencies import LockedProcess, ProcessesRead, ProcessesWrite
from app.domains.process.schemas import ProcessCreate, ProcessFilters, ProcessRead, ProcessUpdate
from app.domains.resource.models import Resource
from app.domains.role.models import Role

router = APIRouter(prefix="/processes", tags=["processes"])
reverse_router = APIRouter(tags=["processes"])


@router.get("", response_model=Page[ProcessRead], responses=AUTHENTICATED_ERRORS)
async def list_processes(
    _: ProcessesRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[ProcessFilters, Query()],
) -> PageResult[Row[Any]]:
    """List processes with their links, filtered and keyset-paginated."""
    return await process_service.list_processes(session, filters=filters, page=page)


@router.post(
    "",
    response_model=ProcessRead,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(409)},
)
async def create_process(
    actor: ProcessesWrite, data: ProcessCreate, session: SessionDep, response: Response
) -> Row[Any]:
    """Create a process and link it to departments, locations, resources and roles."""
    process = await process_service.create(session, data=data, actor=actor)
    response.headers["Location"] = f"/api/v1/processes/{process.id}"
    set_etag(response, process.version)
    return process


@router.get(
    "/{process_id}",
    response_model=ProcessRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404)},
)
async def read_process(
    _: ProcessesRead, process_id: EntityId, session: SessionDep, response: Response
) -> Row[Any]:
    """One process with owner, author and link summaries."""
    process = await process_service.read(session, process_id)
    set_etag(response, process.version)
    return process


@router.patch(
    "/{process_id}",
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
) -> Row[Any]:
    """Update a process; link lists that are present replace the current set."""
    updated = await process_service.update(
        session, process=process, data=data, actor=actor, if_match=expected
    )
    set_etag(response, updated.version)
    return updated


@router.delete(
    "/{process_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 412)},
)
async def delete_process(
    actor: ProcessesWrite, process: LockedProcess, session: SessionDep, expected: IfMatch
) -> None:
    """Delete a process and its links."""
    await process_service.delete(session, process=process, actor=actor, if_match=expected)


async def _linked_page(
    session: SessionDep, page: PageParamsDep, model: Any, entity_id: int, filter_name: str
) -> PageResult[Row[Any]]:
    await get_or_raise(session, model, entity_id)
    filters = ProcessFilters.model_validate({filter_name: entity_id})
    return await process_service.list_processes(session, filters=filters, page=page)


REVERSE = {
    "response_model": Page[ProcessRead],
    "responses": {**AUTHENTICATED_ERRORS, **problem_responses(404)},
}


@reverse_router.get("/departments/{department_id}/processes", **REVERSE)  # type: ignore[arg-type]
async def list_department_processes(
    _: ProcessesRead, department_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[Row[Any]]:
    """Processes linked to a department, keyset-paginated."""
    return await _linked_page(session, page, Department, department_id, "department_id")


@reverse_router.get("/locations/{location_id}/processes", **REVERSE)  # type: ignore[arg-type]
async def list_location_processes(
    _: ProcessesRead, location_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[Row[Any]]:
    """Processes linked to a location, keyset-paginated."""
    return await _linked_page(session, page, Location, location_id, "location_id")


@reverse_router.get("/resources/{resource_id}/processes", **REVERSE)  # type: ignore[arg-type]
async def list_resource_processes(
    _: ProcessesRead, resource_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[Row[Any]]:
    """Processes that use a resource, keyset-paginated."""
    return await _linked_page(session, page, Resource, resource_id, "resource_id")


@reverse_router.get("/roles/{role_id}/processes", **REVERSE)  # type: ignore[arg-type]
async def list_role_processes(
    _: ProcessesRead, role_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[Row[Any]]:
    """Processes a role takes part in, keyset-paginated."""
    return await _linked_page(session, page, Role, role_id, "role_id")
