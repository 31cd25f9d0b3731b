from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.user import service as user_service
from app.domains.user.models import User

UsersRead = Annotated[Principal, Depends(require("users:read"))]
UsersWrite = Annotated[Principal, Depends(require("users:write"))]


async def valid_user(user_id: EntityId, session: SessionDep) -> User:
    return await user_service.get(session, user_id)


async def user_for_update(user_id: EntityId, session: SessionDep) -> User:
    """The user row, locked until the request's transaction ends."""
    return await user_service.get(session, user_id, for_update=True)


ValidUser = Annotated[User, Depends(valid_user)]
LockedUser = Annotated[User, Depends(user_for_update)]
