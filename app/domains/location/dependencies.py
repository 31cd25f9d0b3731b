from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.location import queries as location_queries
from app.domains.location.models import Location

LocationsRead = Annotated[Principal, Depends(require("locations:read"))]
LocationsWrite = Annotated[Principal, Depends(require("locations:write"))]


async def location_for_update(location_id: EntityId, session: SessionDep) -> Location:
    """The tree lock, then the location's row lock, both until the transaction ends."""
    return await location_queries.lock_tree_and_get(session, location_id)


# No ValidLocation: GET by id checks If-None-Match before it loads the row (304 without it).
LockedLocation = Annotated[Location, Depends(location_for_update)]
