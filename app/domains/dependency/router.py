from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS, problem_responses
from app.core.lookups import EntityId
from app.core.pagination import Page, PageParamsDep, PageResult
from app.core.versioning import IfMatch, set_etag
from app.domains.dependency import queries as dependency_queries
from app.domains.dependency import service as dependency_service
from app.domains.dependency.dependencies import (
    ImpactPageDep,
    ImpactQuery,
    LockedProcess,
    ProcessesRead,
    ProcessesWrite,
)
from app.domains.dependency.schemas import (
    MAX_DEPTH,
    DependencyRead,
    DependencySet,
    Direction,
    GraphRead,
    ImpactPage,
)

router = APIRouter(tags=["dependencies"])

READ_RESPONSES = {**AUTHENTICATED_ERRORS, **problem_responses(404)}


@router.get(
    "/processes/{process_id:id}/dependencies",
    response_model=list[DependencyRead],
    responses=READ_RESPONSES,
)
async def read_dependencies(
    _: ProcessesRead, process_id: EntityId, session: SessionDep
) -> list[DependencyRead]:
    """What a process needs: the processes it depends on, with kind and note."""
    return await dependency_queries.dependencies(session, process_id)


@router.put(
    "/processes/{process_id:id}/dependencies",
    response_model=list[DependencyRead],
    responses={**AUTHENTICATED_ERRORS, **problem_responses(404, 409, 412)},
)
async def replace_dependencies(
    actor: ProcessesWrite,
    process: LockedProcess,
    items: Annotated[DependencySet, Body()],
    session: SessionDep,
    expected: IfMatch,
    response: Response,
) -> list[DependencyRead]:
    """Replace what a process needs with this set; a change is a new version of the process."""
    replaced = await dependency_service.replace(
        session, process=process, items=items, actor=actor, if_match=expected
    )
    set_etag(response, process.version)
    return replaced


@router.get(
    "/processes/{process_id:id}/dependents",
    response_model=Page[DependencyRead],
    responses=READ_RESPONSES,
)
async def list_dependents(
    _: ProcessesRead, process_id: EntityId, session: SessionDep, page: PageParamsDep
) -> PageResult[DependencyRead]:
    """What needs a process: the processes that depend on it, keyset-paginated."""
    return await dependency_queries.dependents(session, process_id=process_id, page=page)


@router.get(
    "/processes/{process_id:id}/graph",
    response_model=GraphRead,
    responses=READ_RESPONSES,
)
async def read_graph(
    _: ProcessesRead,
    process_id: EntityId,
    session: SessionDep,
    direction: Direction = Direction.BOTH,
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="Dependencies to follow.")] = 3,
) -> GraphRead:
    """The processes around one, within `depth` dependencies: nodes, edges and cycles."""
    return await dependency_queries.graph(
        session, process_id=process_id, direction=direction, depth=depth
    )


@router.get("/impact", response_model=ImpactPage, responses=READ_RESPONSES)
async def read_impact(filters: ImpactQuery, session: SessionDep, page: ImpactPageDep) -> ImpactPage:
    """What stops if a department, location, resource or role fails, critical first."""
    return await dependency_queries.impact(session, filters=filters, page=page)
