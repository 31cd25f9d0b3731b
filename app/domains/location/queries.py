"""Reading locations: one by id, a filtered page, a subtree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.trees import lock_tree, nest, walk_subtree
from app.domains.location.exceptions import LocationNotFound
from app.domains.location.models import Location
from app.domains.location.schemas import LocationFilters, LocationNode, LocationRead

keyset = Keyset(
    Location.id,
    {"name": Location.name, "created_at": Location.created_at, "updated_at": Location.updated_at},
)


def filtered(filters: LocationFilters) -> Select[Location]:
    """The locations that `filters` select: the list pages them, the export streams them all."""
    statement = select(Location)
    if filters.q:
        statement = statement.where(contains(filters.q, Location.name, Location.city))
    if filters.kind is not None:
        statement = statement.where(Location.kind == filters.kind)
    if filters.country is not None:
        statement = statement.where(Location.country == filters.country)
    if filters.parent_id is not None:
        statement = statement.where(Location.parent_id == filters.parent_id)
    if filters.root is not None:
        statement = statement.where(
            Location.parent_id.is_(None) if filters.root else Location.parent_id.is_not(None)
        )
    if filters.created_by_id is not None:
        statement = statement.where(Location.created_by_id == filters.created_by_id)
    return statement


async def get(session: AsyncSession, location_id: int) -> Location:
    """The location with `location_id`, or LocationNotFound."""
    return await get_or_raise(session, Location, location_id, not_found=LocationNotFound)


async def get_for_update(session: AsyncSession, location_id: int) -> Location:
    """The location, its row locked until the transaction ends."""
    return await get_or_raise(
        session, Location, location_id, not_found=LocationNotFound, for_update=True
    )


async def lock_tree_and_get(session: AsyncSession, location_id: int) -> Location:
    """The tree lock, then the row lock: how every write of an existing location starts.

    The tree lock is table-wide: it queues this write behind every other writer of the
    tree, so that two concurrent moves cannot together close a loop (`lock_tree`).
    """
    await lock_tree(session, Location)
    return await get_for_update(session, location_id)


async def read(session: AsyncSession, location: Location) -> LocationRead:
    """The location as the API shows it, its address as one object (no query)."""
    return LocationRead.model_validate(location)


async def list(
    session: AsyncSession, *, filters: LocationFilters, page: PageParams
) -> PageResult[LocationRead]:
    """A page of locations, filtered and keyset-paginated."""
    result = await fetch_page(session, filtered(filters), keyset, page)
    items = [LocationRead.model_validate(location) for location in result.items]
    return PageResult(items, result.next_cursor, result.total)


def _node(location: Location) -> dict[str, Any]:
    return {
        "id": location.id,
        "name": location.name,
        "kind": location.kind,
        "parent_id": location.parent_id,
    }


async def subtree(session: AsyncSession, location_id: int) -> LocationNode:
    """The location and every descendant, nested, from one recursive query."""
    rows = await walk_subtree(session, Location, location_id)
    if not rows:
        raise LocationNotFound(f"Location {location_id} does not exist.")
    return LocationNode.model_validate(nest(rows, _node))
