"""Resources: what processes use, where it is kept and which department owns it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import require_ids
from app.domains.audit.service import Audited
from app.domains.auth.principal import Principal
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.resource import queries as resource_queries
from app.domains.resource.models import Resource
from app.domains.resource.schemas import ResourceCreate, ResourceRead, ResourceUpdate

AUDITED = Audited(
    "resource",
    fields=("name", "kind", "description", "status", "quantity", "location_id", "department_id"),
)


async def _references_exist(session: AsyncSession, changes: dict[str, Any]) -> None:
    """422 naming the location or department id that does not exist."""
    if changes.get("location_id") is not None:
        await require_ids(session, Location.id, [changes["location_id"]], "location_id")
    if changes.get("department_id") is not None:
        await require_ids(session, Department.id, [changes["department_id"]], "department_id")


async def create(session: AsyncSession, *, data: ResourceCreate, actor: Principal) -> ResourceRead:
    """Create a resource, optionally kept at a location and owned by a department."""
    values = data.model_dump()
    await _references_exist(session, values)
    resource = Resource(**values, created_by_id=actor.user_id)
    async with AUDITED.creating(session, resource, actor=actor):
        pass
    return await resource_queries.read(session, resource)


async def update(
    session: AsyncSession,
    *,
    resource: Resource,
    data: ResourceUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> ResourceRead:
    """Change the fields sent; a null location or department unlinks it."""
    async with AUDITED.updating(session, resource, actor=actor, if_match=if_match) as change:
        changes = sent_fields(data, required=("name", "kind", "status", "quantity"))
        await _references_exist(session, changes)
        change.apply(changes)
    return await resource_queries.read(session, resource)


async def delete(
    session: AsyncSession, *, resource: Resource, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a resource; the database drops its links from processes with it."""
    async with AUDITED.deleting(session, resource, actor=actor, if_match=if_match):
        pass
