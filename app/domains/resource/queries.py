"""Reading resources: one by id or a filtered page, with location and department summaries."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.summaries import NamedSummary, summaries
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.resource.exceptions import ResourceNotFound
from app.domains.resource.models import Resource
from app.domains.resource.schemas import ResourceFilters, ResourceRead

keyset = Keyset(
    Resource.id,
    {
        "name": Resource.name,
        "quantity": Resource.quantity,
        "created_at": Resource.created_at,
        "updated_at": Resource.updated_at,
    },
)


def filtered(filters: ResourceFilters) -> Select[Resource]:
    """The resources that `filters` select: the list pages them, the export streams them all."""
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


async def get(session: AsyncSession, resource_id: int) -> Resource:
    """The resource with `resource_id`, or ResourceNotFound."""
    return await get_or_raise(session, Resource, resource_id, not_found=ResourceNotFound)


async def get_for_update(session: AsyncSession, resource_id: int) -> Resource:
    """The resource, its row locked until the transaction ends."""
    return await get_or_raise(
        session, Resource, resource_id, not_found=ResourceNotFound, for_update=True
    )


def _read(
    resource: Resource,
    locations: Mapping[int, NamedSummary],
    departments: Mapping[int, NamedSummary],
) -> ResourceRead:
    return ResourceRead(
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


async def read(session: AsyncSession, resource: Resource) -> ResourceRead:
    """The resource as the API shows it, with its location's and department's summaries."""
    locations = await summaries(session, Location.name, [resource.location_id])
    departments = await summaries(session, Department.name, [resource.department_id])
    return _read(resource, locations, departments)


async def list(
    session: AsyncSession, *, filters: ResourceFilters, page: PageParams
) -> PageResult[ResourceRead]:
    """A page of resources and, in one query per kind, their locations and departments."""
    result = await fetch_page(session, filtered(filters), keyset, page)
    locations = await summaries(session, Location.name, (r.location_id for r in result.items))
    departments = await summaries(session, Department.name, (r.department_id for r in result.items))
    items = [_read(resource, locations, departments) for resource in result.items]
    return PageResult(items, result.next_cursor, result.total)
