"""dependencies between processes (#17)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 18:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "process_dependencies",
        sa.Column("process_id", sa.BigInteger(), nullable=False),
        sa.Column("depends_on_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "input",
                "approval",
                "service",
                name="kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=True,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "process_id <> depends_on_id", name=op.f("ck_process_dependencies_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["depends_on_id"],
            ["processes.id"],
            name=op.f("fk_process_dependencies_depends_on_id_processes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["processes.id"],
            name=op.f("fk_process_dependencies_process_id_processes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "process_id", "depends_on_id", name=op.f("pk_process_dependencies")
        ),
    )
    op.create_index(
        "ix_process_dependencies_depends_on_id_process_id",
        "process_dependencies",
        ["depends_on_id", "process_id"],
        unique=False,
    )
    # The impact analysis reads criticality and status of every affected process from it.
    op.create_index(
        "ix_processes_id_criticality_status",
        "processes",
        ["id"],
        unique=False,
        postgresql_include=["criticality", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_processes_id_criticality_status", table_name="processes")
    op.drop_index(
        "ix_process_dependencies_depends_on_id_process_id", table_name="process_dependencies"
    )
    op.drop_table("process_dependencies")
