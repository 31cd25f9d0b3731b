from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.location import service as location_service
from app.domains.location.models import Location

LocationsRead = Annotated[Principal, Depends(require("locations:read"))]
LocationsWrite = Annotated[Principal, Depends(require("locations:write"))]


async def valid_location(location_id: EntityId, session: SessionDep) -> Location:
    return await location_service.get(session, location_id)


async def location_for_update(location_id: EntityId, session: SessionDep) -> Location:
    """The location row, locked until the request's transaction ends."""
    return await location_service.get(session, location_id, for_update=True)


ValidLocation = Annotated[Location, Depends(valid_location)]
LockedLocation = Annotated[Location, Depends(location_for_update)]
