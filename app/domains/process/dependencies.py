from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.process import queries
from app.domains.process.models import Process

ProcessesRead = Annotated[Principal, Depends(require("processes:read"))]
ProcessesWrite = Annotated[Principal, Depends(require("processes:write"))]


async def process_for_update(process_id: EntityId, session: SessionDep) -> Process:
    """The process row, locked until the request's transaction ends."""
    return await queries.get_for_update(session, process_id)


# No ValidProcess: GET by id reads the whole view in one statement, which answers the 404.
LockedProcess = Annotated[Process, Depends(process_for_update)]
