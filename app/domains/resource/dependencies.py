from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.resource import queries as resource_queries
from app.domains.resource.models import Resource

ResourcesRead = Annotated[Principal, Depends(require("resources:read"))]
ResourcesWrite = Annotated[Principal, Depends(require("resources:write"))]


async def resource_for_update(resource_id: EntityId, session: SessionDep) -> Resource:
    """The resource row, locked until the request's transaction ends."""
    return await resource_queries.get_for_update(session, resource_id)


# No ValidResource: GET by id checks If-None-Match before it loads the row (304 without it).
LockedResource = Annotated[Resource, Depends(resource_for_update)]
