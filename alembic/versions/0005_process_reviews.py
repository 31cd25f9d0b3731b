"""review due dates of processes (#17)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As app/domains/process/models.py says it (REVIEW_DUE_AT): a migration keeps its own copy.
REVIEW_DUE_AT = (
    "(COALESCE(last_reviewed_at, created_at) AT TIME ZONE 'UTC'"
    " + make_interval(days => review_interval_days)) AT TIME ZONE 'UTC'"
)


def upgrade() -> None:
    op.add_column("processes", sa.Column("review_interval_days", sa.Integer(), nullable=True))
    op.add_column(
        "processes", sa.Column("last_reviewed_at", sa.DateTime(timezone=True), nullable=True)
    )
    # A stored generated column rewrites the table once (seconds at a million processes).
    op.add_column(
        "processes",
        sa.Column(
            "review_due_at",
            sa.DateTime(timezone=True),
            sa.Computed(REVIEW_DUE_AT, persisted=True),
            nullable=True,
        ),
    )
    op.create_check_constraint(
        op.f("ck_processes_review_interval_days"),
        "processes",
        "review_interval_days BETWEEN 1 AND 3650",
    )
    op.create_index(
        "ix_processes_review_due_at_id",
        "processes",
        ["review_due_at", "id"],
        unique=False,
        postgresql_include=["criticality"],
        postgresql_where=sa.text("review_due_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_processes_review_due_at_id",
        table_name="processes",
        postgresql_where=sa.text("review_due_at IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_processes_review_interval_days"), "processes", type_="check")
    op.drop_column("processes", "review_due_at")
    op.drop_column("processes", "last_reviewed_at")
    op.drop_column("processes", "review_interval_days")
