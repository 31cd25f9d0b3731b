from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, EntityMixin, entity_table_args, str_enum, trigram_index


class ProcessStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    RETIRED = "retired"


class Criticality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def _link_table(name: str, target: str) -> Table:
    """A process-to-<target> link: composite key, cascading both ways, indexed both ways."""
    return Table(
        f"process_{name}",
        Base.metadata,
        Column("process_id", ForeignKey("processes.id", ondelete="CASCADE"), primary_key=True),
        Column(f"{target}_id", ForeignKey(f"{name}.id", ondelete="CASCADE"), primary_key=True),
        Index(f"ix_process_{name}_{target}_id_process_id", f"{target}_id", "process_id"),
    )


process_departments = _link_table("departments", "department")
process_locations = _link_table("locations", "location")
process_resources = _link_table("resources", "resource")
process_roles = _link_table("roles", "role")

MAX_REVIEW_INTERVAL_DAYS = 3650

# When the next review is due: the last review (or the creation) plus the interval, in UTC
# days. `timestamptz + interval` depends on the session's time zone, so it cannot define a
# stored column; the same sum on UTC wall-clock time can, and gives the same instant.
REVIEW_DUE_AT = (
    "(COALESCE(last_reviewed_at, created_at) AT TIME ZONE 'UTC'"
    " + make_interval(days => review_interval_days)) AT TIME ZONE 'UTC'"
)


class Process(EntityMixin, Base):
    """The hub: what the organisation does, and who, where and with what it does it."""

    __tablename__ = "processes"
    __table_args__ = entity_table_args(
        "processes",
        Index("ix_processes_status_id", "status", "id"),
        Index("ix_processes_criticality_id", "criticality", "id"),
        Index("ix_processes_owner_id_id", "owner_id", "id"),
        Index("ix_processes_title_id", "title", "id"),
        Index("ix_processes_updated_at_id", "updated_at", "id"),
        # Serves `review_overdue` (pages in due order) and the overdue gauge (index only:
        # criticality is included).
        Index(
            "ix_processes_review_due_at_id",
            "review_due_at",
            "id",
            postgresql_include=["criticality"],
            postgresql_where=text("review_due_at IS NOT NULL"),
        ),
        CheckConstraint(
            f"review_interval_days BETWEEN 1 AND {MAX_REVIEW_INTERVAL_DAYS}",
            name="review_interval_days",
        ),
        # Trigram indexes serve `q` (ILIKE '%text%') on title and description.
        trigram_index("processes", "title"),
        trigram_index("processes", "description"),
    )

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[ProcessStatus] = mapped_column(
        str_enum(ProcessStatus, "status"),
        server_default=ProcessStatus.DRAFT.value,
    )
    criticality: Mapped[Criticality] = mapped_column(
        str_enum(Criticality, "criticality"),
        server_default=Criticality.MEDIUM.value,
    )
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    review_interval_days: Mapped[int | None] = mapped_column(Integer)
    last_reviewed_at: Mapped[datetime | None]
    review_due_at: Mapped[datetime | None] = mapped_column(Computed(REVIEW_DUE_AT, persisted=True))
