from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, EntityMixin, entity_table_args, str_enum, trigram_index


class LocationKind(StrEnum):
    SITE = "site"
    BUILDING = "building"
    FLOOR = "floor"
    ROOM = "room"
    VIRTUAL = "virtual"


class Location(EntityMixin, Base):
    """Where work happens; locations form a tree (site, building, floor, room)."""

    __tablename__ = "locations"
    __table_args__ = entity_table_args(
        "locations",
        Index("ix_locations_parent_id_id", "parent_id", "id"),
        Index("ix_locations_kind_id", "kind", "id"),
        Index("ix_locations_country_id", "country", "id"),
        Index("ix_locations_name_id", "name", "id"),
        Index("ix_locations_updated_at_id", "updated_at", "id"),
        trigram_index("locations", "name"),
    )

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[LocationKind] = mapped_column(str_enum(LocationKind, "kind"))
    address_line1: Mapped[str | None] = mapped_column(String(300))
    city: Mapped[str | None] = mapped_column(String(120))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
