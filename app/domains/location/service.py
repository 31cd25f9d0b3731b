"""Locations: a tree of sites, buildings, floors and rooms (or virtual places)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import sent_fields
from app.core.lookups import ensure_unreferenced
from app.core.trees import check_parent
from app.domains.audit.service import Audited
from app.domains.auth.principal import Principal
from app.domains.location import queries as location_queries
from app.domains.location.models import Location
from app.domains.location.schemas import LocationCreate, LocationRead, LocationUpdate
from app.domains.resource.models import Resource
from app.domains.user.models import User

AUDITED = Audited(
    "location",
    fields=(
        "name",
        "kind",
        "address_line1",
        "city",
        "postal_code",
        "country",
        "timezone",
        "parent_id",
    ),
)
# The API's `address` object, part by part, and the column that stores each part.
ADDRESS_COLUMNS = {
    "line1": "address_line1",
    "city": "city",
    "postal_code": "postal_code",
    "country": "country",
}


def _address_columns(address: dict[str, Any] | None) -> dict[str, Any]:
    """Column values for the address parts present in `address` (None clears every part)."""
    if address is None:
        return dict.fromkeys(ADDRESS_COLUMNS.values())
    return {ADDRESS_COLUMNS[part]: value for part, value in address.items()}


async def create(session: AsyncSession, *, data: LocationCreate, actor: Principal) -> LocationRead:
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
    async with AUDITED.creating(session, location, actor=actor):
        pass
    return await location_queries.read(session, location)


async def update(
    session: AsyncSession,
    *,
    location: Location,
    data: LocationUpdate,
    actor: Principal,
    if_match: list[int] | None,
) -> LocationRead:
    """Rename, re-kind, re-address or move a location; `address` changes only the parts sent."""
    async with AUDITED.updating(session, location, actor=actor, if_match=if_match) as change:
        changes = sent_fields(data, required=("name", "kind", "timezone"))
        if "address" in changes:
            changes.update(_address_columns(changes.pop("address")))
        if "parent_id" in changes and changes["parent_id"] != location.parent_id:
            await check_parent(
                session, Location, node_id=location.id, parent_id=changes["parent_id"]
            )
        change.apply(changes)
    return await location_queries.read(session, location)


async def delete(
    session: AsyncSession, *, location: Location, actor: Principal, if_match: list[int] | None
) -> None:
    """Delete a location nothing depends on; its links from processes go with it."""
    async with AUDITED.deleting(session, location, actor=actor, if_match=if_match):
        await ensure_unreferenced(
            session,
            f"Location {location.id}",
            {
                "child locations": Location.parent_id == location.id,
                "users": User.location_id == location.id,
                "resources": Resource.location_id == location.id,
            },
        )
