from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, str_enum
from app.domains.process.models import Process


class DependencyKind(StrEnum):
    INPUT = "input"
    APPROVAL = "approval"
    SERVICE = "service"


class ProcessDependency(Base):
    """An edge of the process graph: `process_id` needs `depends_on_id` to run."""

    __tablename__ = "process_dependencies"
    __table_args__ = (
        CheckConstraint("process_id <> depends_on_id", name="not_self"),
        # The primary key walks upstream (what a process needs); this walks downstream.
        Index("ix_process_dependencies_depends_on_id_process_id", "depends_on_id", "process_id"),
    )

    process_id: Mapped[int] = mapped_column(
        ForeignKey("processes.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("processes.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[DependencyKind | None] = mapped_column(str_enum(DependencyKind, "kind"))
    note: Mapped[str | None] = mapped_column(Text)


# The impact analysis reads the criticality and status of every process a failure reaches
# (thousands); this index answers them without reading the table (docs/benchmarks.md, "The
# atlas as a graph"). It is the dependency domain's, on the process table.
Index(
    "ix_processes_id_criticality_status",
    Process.id,
    postgresql_include=["criticality", "status"],
)
