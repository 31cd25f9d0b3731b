from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import NOT_MODIFIED, IfMatch, IfNoneMatch, check_not_modified, set_etag
from app.domains.department import queries as department_queries
from app.domains.department import service as department_service
from app.domains.department.dependencies import (
    DepartmentsRead,
    DepartmentsWrite,
    LockedDepartment,
)
from app.domains.department.models import Department
from app.domains.department.schemas import (
    DepartmentCreate,
    DepartmentFilters,
    DepartmentNode,
    DepartmentRead,
    DepartmentUpdate,
)

router = APIRouter(prefix="/departments", tags=["departments"])


@router.get("", response_model=Page[DepartmentRead], responses=AUTHENTICATED_ERRORS)
async def list_departments(
    _: DepartmentsRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[DepartmentFilters, Query()],
) -> PageResult[DepartmentRead]:
    """List departments, filtered and keyset-paginated."""
    return await department_queries.list(session, filters=filters, page=page)


@router.post(
    "",
    response_model=DepartmentRead,
    status_code=status.HTTP_201_CREATED,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(409)},
)
async def create_department(
    actor: DepartmentsWrite, data: DepartmentCreate, session: SessionDep, response: Response
) -> DepartmentRead:
    """Create a department, at the top level or under a parent."""
    department = await department_service.create(session, data=data, actor=actor)
    response.headers["Location"] = f"/api/v1/departments/{department.id}"
    set_etag(response, department.version)
    return department


@router.get(
    "/{department_id:id}",
    response_model=DepartmentRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404), **NOT_MODIFIED},
)
async def read_department(
    _: DepartmentsRead,
    department_id: EntityId,
    session: SessionDep,
    cached: IfNoneMatch,
    response: Response,
) -> DepartmentRead:
    """One department, with its manager."""
    await check_not_modified(session, Department, department_id, if_none_match=cached)
    department = await department_queries.get(session, department_id)
    set_etag(response, department.version)
    return await department_queries.read(session, department)


@router.get(
    "/{department_id:id}/tree",
    response_model=DepartmentNode,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404)},
)
async def read_department_tree(
    _: DepartmentsRead, department_id: EntityId, session: SessionDep
) -> DepartmentNode:
    """A department and all its descendants, nested under `children`."""
    return await department_queries.subtree(session, department_id)


@router.patch(
    "/{department_id:id}",
    response_model=DepartmentRead,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def update_department(
    actor: DepartmentsWrite,
    department: LockedDepartment,
    data: DepartmentUpdate,
    session: SessionDep,
    expected: IfMatch,
    response: Response,
) -> DepartmentRead:
    """Update a department; a new parent must not be the department or one below it."""
    updated = await department_service.update(
        session, department=department, data=data, actor=actor, if_match=expected
    )
    set_etag(response, updated.version)
    return updated


@router.delete(
    "/{department_id:id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def delete_department(
    actor: DepartmentsWrite, department: LockedDepartment, session: SessionDep, expected: IfMatch
) -> None:
    """Delete a department with no children, users or resources; process links go with it."""
    await department_service.delete(session, department=department, actor=actor, if_match=expected)
