from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, EntityMixin, entity_table_args, str_enum, trigram_index


class ResourceKind(StrEnum):
    EQUIPMENT = "equipment"
    SYSTEM = "system"
    MATERIAL = "material"
    FACILITY = "facility"
    DOCUMENT = "document"
    OTHER = "other"


class ResourceStatus(StrEnum):
    AVAILABLE = "available"
    IN_USE = "in_use"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class Resource(EntityMixin, Base):
    """Something processes use: equipment, systems, materials, facilities, documents."""

    __tablename__ = "resources"
    __table_args__ = entity_table_args(
        "resources",
        Index("ix_resources_kind_id", "kind", "id"),
        Index("ix_resources_status_id", "status", "id"),
        Index("ix_resources_location_id_id", "location_id", "id"),
        Index("ix_resources_department_id_id", "department_id", "id"),
        Index("ix_resources_name_id", "name", "id"),
        Index("ix_resources_quantity_id", "quantity", "id"),
        Index("ix_resources_updated_at_id", "updated_at", "id"),
        trigram_index("resources", "name"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ResourceKind] = mapped_column(str_enum(ResourceKind, "kind"))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ResourceStatus] = mapped_column(
        str_enum(ResourceStatus, "status"),
        server_default=ResourceStatus.AVAILABLE.value,
    )
    quantity: Mapped[int] = mapped_column(server_default="1")
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id", ondelete="RESTRICT"))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT")
    )
