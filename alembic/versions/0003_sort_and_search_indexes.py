"""indexes for every sort and search

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:37:12.070701+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_action", "audit_events", ["action", "id"], unique=False)
    op.create_index("ix_departments_name_id", "departments", ["name", "id"], unique=False)
    op.create_index(
        "ix_departments_name_trgm",
        "departments",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_departments_updated_at_id", "departments", ["updated_at", "id"], unique=False
    )
    op.create_index("ix_locations_name_id", "locations", ["name", "id"], unique=False)
    op.create_index(
        "ix_locations_name_trgm",
        "locations",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index("ix_locations_updated_at_id", "locations", ["updated_at", "id"], unique=False)
    op.create_index("ix_resources_name_id", "resources", ["name", "id"], unique=False)
    op.create_index(
        "ix_resources_name_trgm",
        "resources",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index("ix_resources_quantity_id", "resources", ["quantity", "id"], unique=False)
    op.create_index("ix_resources_updated_at_id", "resources", ["updated_at", "id"], unique=False)
    op.create_index("ix_roles_name_id", "roles", ["name", "id"], unique=False)
    op.create_index(
        "ix_roles_name_trgm",
        "roles",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_roles_permissions", "roles", ["permissions"], unique=False, postgresql_using="gin"
    )
    op.create_index("ix_roles_updated_at_id", "roles", ["updated_at", "id"], unique=False)
    op.create_index(
        "ix_users_email_trgm",
        "users",
        ["email"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"email": "gin_trgm_ops"},
    )
    op.create_index("ix_users_full_name_id", "users", ["full_name", "id"], unique=False)
    op.create_index(
        "ix_users_full_name_trgm",
        "users",
        ["full_name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"full_name": "gin_trgm_ops"},
    )
    op.create_index("ix_users_updated_at_id", "users", ["updated_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_users_updated_at_id", table_name="users")
    op.drop_index(
        "ix_users_full_name_trgm",
        table_name="users",
        postgresql_using="gin",
        postgresql_ops={"full_name": "gin_trgm_ops"},
    )
    op.drop_index("ix_users_full_name_id", table_name="users")
    op.drop_index(
        "ix_users_email_trgm",
        table_name="users",
        postgresql_using="gin",
        postgresql_ops={"email": "gin_trgm_ops"},
    )
    op.drop_index("ix_roles_updated_at_id", table_name="roles")
    op.drop_index("ix_roles_permissions", table_name="roles", postgresql_using="gin")
    op.drop_index(
        "ix_roles_name_trgm",
        table_name="roles",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_roles_name_id", table_name="roles")
    op.drop_index("ix_resources_updated_at_id", table_name="resources")
    op.drop_index("ix_resources_quantity_id", table_name="resources")
    op.drop_index(
        "ix_resources_name_trgm",
        table_name="resources",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_resources_name_id", table_name="resources")
    op.drop_index("ix_locations_updated_at_id", table_name="locations")
    op.drop_index(
        "ix_locations_name_trgm",
        table_name="locations",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_locations_name_id", table_name="locations")
    op.drop_index("ix_departments_updated_at_id", table_name="departments")
    op.drop_index(
        "ix_departments_name_trgm",
        table_name="departments",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_departments_name_id", table_name="departments")
    op.drop_index("ix_audit_events_action", table_name="audit_events")
