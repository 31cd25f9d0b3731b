"""Locations: a tree of sites, buildings, floors and rooms (or virtual places)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import ensure_unreferenced, get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.search import contains
from app.core.trees import check_parent, lock_tree, nest, walk_subtree
from app.core.versioning import check_version
from app.domains.audit import service as audit
from app.domains.auth.principal import Principal
from app.domains.location.exceptions import LocationNotFound
from app.domains.location.models import Location
from app.domains.location.schemas import LocationCreate, LocationFilters, LocationUpdate
from app.domains.resource.models import Resource
from app.domains.user.models import User

ENTITY = "location"
AUDITED_FIELDS = (
    "name",
    "kind",
    "address_line1",
    "city",
    "postal_code",
    "country",
    "timezone",
    "parent_id",
)
# The API's `address` object, part by part, and the column that stores each part.
ADDRESS_COLUMNS = {
    "line1": "address_line1",
    "city": "city",
    "postal_code": "postal_code",
    "country": "country",
}
keyset = Keyset(
    Location.id,
    {"name": Location.name, "created_at": Location.created_at, "updated_at": Location.updated_at},
)


def _filtered(filters: LocationFilters) -> Select[Location]:
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


async def list_locations(
    session: AsyncSession, *, filters: LocationFilters, page: PageParams
) -> PageResult[Location]:
    return await fetch_page(session, _filtered(filters), keyset, page)


async def get(session: AsyncSession, location_id: int, *, for_update: bool = False) -> Location:
    if for_update:
        await lock_tree(session, Location)
    return await get_or_raise(
        session, Location, location_id, not_found=LocationNotFound, for_update=for_update
    )


async def subtree(session: AsyncSession, location_id: int) -> dict[str, Any]:
    """The location and every descendant, nested, from one recursive query."""
    rows = await walk_subtree(session, Location, location_id)
    if not rows:
        raise LocationNotFound(f"Location {location_id} does not exist.")
    return nest(
        rows,
        lambda loc: {"id": loc.id, "name": loc.name, "kind": loc.kind, "parent_id": loc.parent_id},
    )


def _address_columns(address: dict[str, Any] | None) -> dict[str, Any]:
    """Column values for the address parts present in `address` (None clears every part)."""
    if address is None:
        return dict.fromkeys(ADDRESS_COLUMNS.values())
    return {ADDRESS_COLUMNS[part]: value for part, value in address.items()}


async def create(session: AsyncSession, *, data: LocationCreate, actor: Principal) -> Location:
    """Create a location, at the top level or under a parent."""
    await check_parent(session, Location, node_id=None, parent_id=data.parent_id)
    location = Location(
        name=data.name,
        kind=data.kind,
        timezone=data.timezone,
        parent_id=data.parent_id,
        created_by_id=actor.user_id,
        **_address_columns(data.address.model_dump()),
    )
    session.add(location)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="create",
        entity_type=ENTITY,
        entity_id=location.id,
        changes=audit.created(location, AUDITED_FIELDS),
    )
    return location


async def update(
    session: AsyncSession,
    *,
    location: Location,
    data: LocationUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> Location:
    """Rename, re-kind, re-address or move a location; `address` changes only the parts sent."""
    check_version(location.version, if_match)
    changes = sent_fields(data, required=("name", "kind", "timezone"))
    if "address" in changes:
        changes.update(_address_columns(changes.pop("address")))
    if "parent_id" in changes and changes["parent_id"] != location.parent_id:
        await check_parent(session, Location, node_id=location.id, parent_id=changes["parent_id"])
    audit_changes = audit.apply(location, changes, AUDITED_FIELDS)
    if not audit_changes:
        return location
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="update",
        entity_type=ENTITY,
        entity_id=location.id,
        changes=audit_changes,
    )
    return location


async def delete_location(
    session: AsyncSession, *, location: Location, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a location nothing depends on; its links from processes go with it."""
    check_version(location.version, if_match)
    await ensure_unreferenced(
        session,
        f"Location {location.id}",
        {
            "child locations": Location.parent_id == location.id,
            "users": User.location_id == location.id,
            "resources": Resource.location_id == location.id,
        },
    )
    before = audit.snapshot(location, AUDITED_FIELDS)
    await session.delete(location)
    await session.flush()
    await audit.record(
        session,
        actor_id=actor.user_id,
        action="delete",
        entity_type=ENTITY,
        entity_id=location.id,
        changes=audit.deleted(before),
    )
