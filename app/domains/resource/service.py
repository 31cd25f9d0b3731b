"""Resources: what processes use, where it is kept and which department owns it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.errors import register_constraint
from app.core.lookups import get_or_raise, require_ids
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.summaries import NamedSummary
from app.core.versioning import check_version
from app.domains.audit import service as audit
from app.domains.auth.principal import Principal
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.resource.exceptions import ResourceNotFound
from app.domains.resource.models import Resource
from app.domains.resource.schemas import (
    ResourceCreate,
    ResourceFilters,
    ResourceRead,
    ResourceUpdate,
)

ENTITY = "resource"
AUDITED_FIELDS = (
    "name",
    "kind",
    "description",
    "status",
    "quantity",
    "location_id",
    "department_id",
)
keyset = Keyset(
    Resource.id,
    {
        "name": Resource.name,
        "quantity": Resource.quantity,
        "created_at": Resource.created_at,
        "updated_at": Resource.updated_at,
    },
)

register_constraint("ck_resources_quantity_not_negative", "quantity cannot be negative.")


def _filtered(filters: ResourceFilters) -> Select[Resource]:
    statement = select(Resource)
    if filters.q:
        statement = statement.where(contains(filters.q, Resource.name, Resource.description))
    if filters.kind is not None:
        statement = statement.where(Resource.kind == filters.kind)
    if filters.status is not None:
        statement = statement.where(Resource.status == filters.status)
    if filters.location_id is not None:
        statement = statement.where(Resource.location_id == filters.location_id)
    if filters.department_id is not None:
        statement = statement.where(Resource.department_id == filters.department_id)
    if filters.created_by_id is not None:
        statement = statement.where(Resource.created_by_id == filters.created_by_id)
    return statement


async def _summaries(
    session: AsyncSession, model: type[Department] | type[Location], ids: Iterable[int | None]
) -> dict[int, NamedSummary]:
    """`{id: {id, name}}` of the rows of `model` among `ids`, in one query."""
    wanted = {entity_id for entity_id in ids if entity_id is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {row.id: NamedSummary(id=row.id, name=row.name) for row in rows}


async def present(session: AsyncSession, resources: Sequence[Resource]) -> list[ResourceRead]:
    """Resources as clients read them, summaries included (one query per kind, not per row)."""
    locations = await _summaries(session, Location, (r.location_id for r in resources))
    departments = await _summaries(session, Department, (r.department_id for r in resources))
    return [
        ResourceRead(
            id=resource.id,
            name=resource.name,
            kind=resource.kind,
            description=resource.description,
            status=resource.status,
            quantity=resource.quantity,
            location=locations.get(resource.location_id) if resource.location_id else None,
            department=departments.get(resource.department_id) if resource.department_id else None,
            created_at=resource.created_at,
            updated_at=resource.updated_at,
            created_by_id=resource.created_by_id,
            version=resource.version,
        )
        for resource in resources
    ]


async def present_one(session: AsyncSession, resource: Resource) -> ResourceRead:
    """One resource as clients read it."""
    return (await present(session, [resource]))[0]


async def list_resources(
    session: AsyncSession, *, filters: ResourceFilters, page: PageParams
) -> PageResult[ResourceRead]:
    result = await fetch_page(session, _filtered(filters), keyset, page)
    return PageResult(await present(session, result.items), result.next_cursor, result.total)


async def get(session: AsyncSession, resource_id: int, *, for_update: bool = False) -> Resource:
    return await get_or_raise(
        session, Resource, resource_id, not_found=ResourceNotFound, for_update=for_update
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
    session.add(resource)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="create",
        entity_type=ENTITY,
        entity_id=resource.id,
        changes=audit.created(resource, AUDITED_FIELDS),
    )
    return await present_one(session, resource)


async def update(
    session: AsyncSession,
    *,
    resource: Resource,
    data: ResourceUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> ResourceRead:
    """Change the fields sent; a null location or department unlinks it."""
    check_version(resource.version, if_match)
    changes = sent_fields(data, required=("name", "kind", "status", "quantity"))
    await _references_exist(session, changes)
    audit_changes = audit.apply(resource, changes, AUDITED_FIELDS)
    if audit_changes:
        await session.flush()
        await audit.record(
            session,
            actor_id=actor.user_id,
            action="update",
            entity_type=ENTITY,
            entity_id=resource.id,
            changes=audit_changes,
        )
    return await present_one(session, resource)


async def delete_resource(
    session: AsyncSession, *, resource: Resource, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a resource; the database drops its links from processes with it."""
    check_version(resource.version, if_match)
    before = audit.snapshot(resource, AUDITED_FIELDS)
    await session.delete(resource)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="delete",
        entity_type=ENTITY,
        entity_id=resource.id,
        changes=audit.deleted(before),
    )
