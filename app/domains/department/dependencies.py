from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.core.database import SessionDep
from app.core.lookups import EntityId
from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal
from app.domains.department import queries as department_queries
from app.domains.department.models import Department

DepartmentsRead = Annotated[Principal, Depends(require("departments:read"))]
DepartmentsWrite = Annotated[Principal, Depends(require("departments:write"))]


async def department_for_update(department_id: EntityId, session: SessionDep) -> Department:
    """The tree lock, then the department's row lock, both until the transaction ends."""
    return await department_queries.lock_tree_and_get(session, department_id)


# No ValidDepartment: GET by id checks If-None-Match before it loads the row (304 without it).
LockedDepartment = Annotated[Department, Depends(department_for_update)]
