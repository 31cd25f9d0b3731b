from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require, require_password_session
from app.domains.auth.principal import Principal
from app.domains.user import queries as user_queries
from app.domains.user.models import User

UsersRead = Annotated[Principal, Depends(require("users:read"))]
UsersWrite = Annotated[Principal, Depends(require("users:write"))]
SignedIn = Annotated[Principal, Depends(require(None))]
"""Any signed-in user: the routes of one's own account (/users/me)."""
PasswordChanger = Annotated[Principal, Depends(require_password_session("change passwords"))]
"""Any signed-in user but an API token."""


async def user_for_update(user_id: EntityId, session: SessionDep) -> User:
    """The user row, locked until the request's transaction ends."""
    return await user_queries.get_for_update(session, user_id)


# No ValidUser or Me: GET by id and /users/me check If-None-Match before they load the row.
LockedUser = Annotated[User, Depends(user_for_update)]
