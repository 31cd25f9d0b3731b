from __future__ import annotations

from sqlalchemy import Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, EntityMixin, entity_table_args, trigram_index


class Role(EntityMixin, Base):
    """A job function (processes link to roles) and a grant of permissions."""

    __tablename__ = "roles"
    __table_args__ = entity_table_args(
        "roles",
        Index("ix_roles_name_id", "name", "id"),
        Index("ix_roles_updated_at_id", "updated_at", "id"),
        Index("ix_roles_permissions", "permissions", postgresql_using="gin"),
        trigram_index("roles", "name"),
    )

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")


Index("uq_roles_name_lower", func.lower(Role.name), unique=True)
