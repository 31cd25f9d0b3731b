from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from app.core.database import SessionDep
from app.core.errors import Forbidden
from app.core.lookups import EntityId
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageParams
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.dependency import queries
from app.domains.dependency.schemas import ImpactFilters
from app.domains.process.models import Process

ProcessesRead = Annotated[Principal, Depends(require("processes:read"))]
ProcessesWrite = Annotated[Principal, Depends(require("processes:write"))]

# What reading the impact of a failure needs besides processes:read, per entity named.
ENTITY_PERMISSIONS = {
    "department_id": "departments:read",
    "location_id": "locations:read",
    "resource_id": "resources:read",
    "role_id": "roles:read",
}


async def process_for_update(process_id: EntityId, session: SessionDep) -> Process:
    """The process row, locked until the request's transaction ends."""
    return await queries.lock_process(session, process_id)


LockedProcess = Annotated[Process, Depends(process_for_update)]


async def permitted_impact_filters(
    principal: ProcessesRead, filters: Annotated[ImpactFilters, Query()]
) -> ImpactFilters:
    """The filters, if the caller may also read every kind of entity they name (else 403)."""
    lacking = [
        ENTITY_PERMISSIONS[field]
        for field in queries.named(filters)
        if not principal.can(ENTITY_PERMISSIONS[field])
    ]
    if lacking:
        raise Forbidden(f"This needs the {', '.join(repr(p) for p in lacking)} permission.")
    return filters


ImpactQuery = Annotated[ImpactFilters, Depends(permitted_impact_filters)]


async def impact_page(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    """A page of an impact answer: its order is fixed (critical first, then nearest)."""
    return PageParams(limit=limit, cursor=cursor, sort=None, include_total=False)


ImpactPageDep = Annotated[PageParams, Depends(impact_page)]
