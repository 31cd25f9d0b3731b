from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, EntityMixin, entity_table_args, trigram_index

if TYPE_CHECKING:
    from app.domains.department.models import Department
    from app.domains.location.models import Location
    from app.domains.role.models import Role

user_roles = Table(
    "user_roles",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(EntityMixin, Base):
    """A person who signs in, or a service account; what they may do comes from their roles.

    A service account has no password (`password_hash` is NULL): it acts through API
    tokens only, which a superuser creates for it.
    """

    __tablename__ = "users"
    __table_args__ = entity_table_args(
        "users",
        Index("ix_users_department_id_id", "department_id", "id"),
        Index("ix_users_location_id_id", "location_id", "id"),
        Index("ix_users_full_name_id", "full_name", "id"),
        Index("ix_users_updated_at_id", "updated_at", "id"),
        trigram_index("users", "email"),
        trigram_index("users", "full_name"),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    full_name: Mapped[str] = mapped_column(String(200))
    job_title: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(server_default="true", index=True)
    is_superuser: Mapped[bool] = mapped_column(server_default="false")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT", use_alter=True)
    )
    location_id: Mapped[int | None] = mapped_column(
        ForeignKey("locations.id", ondelete="RESTRICT", use_alter=True)
    )

    department: Mapped[Department | None] = relationship(lazy="raise", foreign_keys=[department_id])
    location: Mapped[Location | None] = relationship(lazy="raise", foreign_keys=[location_id])
    roles: Mapped[list[Role]] = relationship(
        secondary=user_roles, lazy="raise", passive_deletes=True, order_by="Role.id"
    )

    @property
    def is_service_account(self) -> bool:
        return self.password_hash is None
