from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.user import queries as user_queries
from app.domains.user.models import User

UsersRead = Annotated[Principal, Depends(require("users:read"))]
UsersWrite = Annotated[Principal, Depends(require("users:write"))]
SignedIn = Annotated[Principal, Depends(require(None))]
"""Any signed-in user: the routes of one's own account (/users/me)."""


async def valid_user(user_id: EntityId, session: SessionDep) -> User:
    return await user_queries.get(session, user_id)


async def user_for_update(user_id: EntityId, session: SessionDep) -> User:
    """The user row, locked until the request's transaction ends."""
    return await user_queries.get_for_update(session, user_id)


async def signed_in_user(principal: SignedIn, session: SessionDep) -> User:
    """The caller's own user row."""
    return await user_queries.get(session, principal.user_id)


ValidUser = Annotated[User, Depends(valid_user)]
LockedUser = Annotated[User, Depends(user_for_update)]
Me = Annotated[User, Depends(signed_in_user)]
