from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.role import queries as role_queries
from app.domains.role.models import Role

RolesRead = Annotated[Principal, Depends(require("roles:read"))]
RolesWrite = Annotated[Principal, Depends(require("roles:write"))]


async def role_for_update(role_id: EntityId, session: SessionDep) -> Role:
    """The role row, locked until the request's transaction ends."""
    return await role_queries.get_for_update(session, role_id)


# No ValidRole: GET by id checks If-None-Match before it loads the row (304 without it).
LockedRole = Annotated[Role, Depends(role_for_update)]
