from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, EntityMixin, entity_table_args, trigram_index


class Department(EntityMixin, Base):
    """An organisational unit; departments form a tree through `parent_id`."""

    __tablename__ = "departments"
    __table_args__ = entity_table_args(
        "departments",
        Index("ix_departments_parent_id_id", "parent_id", "id"),
        Index("ix_departments_name_id", "name", "id"),
        Index("ix_departments_updated_at_id", "updated_at", "id"),
        trigram_index("departments", "name"),
    )

    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str | None] = mapped_column(String(32), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="RESTRICT"))
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )


# Names are unique among siblings, ignoring case; roots are siblings of each other.
Index(
    "uq_departments_parent_id_name",
    func.coalesce(Department.parent_id, 0),
    func.lower(Department.name),
    unique=True,
)
