"""organisation: departments, locations, resources, processes and their links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:26:13.597577+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Trigram indexes serve case-insensitive substring search on processes.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "departments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("manager_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_departments_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["users.id"],
            name=op.f("fk_departments_manager_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["departments.id"],
            name=op.f("fk_departments_parent_id_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("code", name=op.f("uq_departments_code")),
    )
    op.create_index(
        "ix_departments_created_at_id", "departments", ["created_at", "id"], unique=False
    )
    op.create_index(
        "ix_departments_created_by_id_id", "departments", ["created_by_id", "id"], unique=False
    )
    op.create_index(op.f("ix_departments_manager_id"), "departments", ["manager_id"], unique=False)
    op.create_index("ix_departments_parent_id_id", "departments", ["parent_id", "id"], unique=False)
    op.create_index(
        "uq_departments_parent_id_name",
        "departments",
        [sa.literal_column("coalesce(parent_id, 0)"), sa.literal_column("lower(name)")],
        unique=True,
    )
    op.create_table(
        "locations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "site",
                "building",
                "floor",
                "room",
                "virtual",
                name="kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("address_line1", sa.String(length=300), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_locations_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["locations.id"],
            name=op.f("fk_locations_parent_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_locations")),
    )
    op.create_index("ix_locations_country_id", "locations", ["country", "id"], unique=False)
    op.create_index("ix_locations_created_at_id", "locations", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_locations_created_by_id_id", "locations", ["created_by_id", "id"], unique=False
    )
    op.create_index("ix_locations_kind_id", "locations", ["kind", "id"], unique=False)
    op.create_index("ix_locations_parent_id_id", "locations", ["parent_id", "id"], unique=False)
    op.create_table(
        "processes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "retired",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            server_default="draft",
            nullable=False,
        ),
        sa.Column(
            "criticality",
            sa.Enum(
                "low",
                "medium",
                "high",
                "critical",
                name="criticality",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            server_default="medium",
            nullable=False,
        ),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_processes_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_processes_owner_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processes")),
    )
    op.create_index("ix_processes_created_at_id", "processes", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_processes_created_by_id_id", "processes", ["created_by_id", "id"], unique=False
    )
    op.create_index("ix_processes_criticality_id", "processes", ["criticality", "id"], unique=False)
    op.create_index(
        "ix_processes_description_trgm",
        "processes",
        ["description"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"description": "gin_trgm_ops"},
    )
    op.create_index("ix_processes_owner_id_id", "processes", ["owner_id", "id"], unique=False)
    op.create_index("ix_processes_status_id", "processes", ["status", "id"], unique=False)
    op.create_index("ix_processes_title_id", "processes", ["title", "id"], unique=False)
    op.create_index(
        "ix_processes_title_trgm",
        "processes",
        ["title"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.create_index("ix_processes_updated_at_id", "processes", ["updated_at", "id"], unique=False)
    op.create_table(
        "resources",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "equipment",
                "system",
                "material",
                "facility",
                "document",
                "other",
                name="kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "available",
                "in_use",
                "maintenance",
                "retired",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            server_default="available",
            nullable=False,
        ),
        sa.Column("quantity", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=True),
        sa.Column("department_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_resources_quantity_not_negative")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_resources_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_resources_department_id_departments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_resources_location_id_locations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resources")),
    )
    op.create_index("ix_resources_created_at_id", "resources", ["created_at", "id"], unique=False)
    op.create_index(
        "ix_resources_created_by_id_id", "resources", ["created_by_id", "id"], unique=False
    )
    op.create_index(
        "ix_resources_department_id_id", "resources", ["department_id", "id"], unique=False
    )
    op.create_index("ix_resources_kind_id", "resources", ["kind", "id"], unique=False)
    op.create_index("ix_resources_location_id_id", "resources", ["location_id", "id"], unique=False)
    op.create_index("ix_resources_status_id", "resources", ["status", "id"], unique=False)
    op.create_table(
        "process_departments",
        sa.Column("process_id", sa.BigInteger(), nullable=False),
        sa.Column("department_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_process_departments_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["processes.id"],
            name=op.f("fk_process_departments_process_id_processes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("process_id", "department_id", name=op.f("pk_process_departments")),
    )
    op.create_index(
        "ix_process_departments_department_id_process_id",
        "process_departments",
        ["department_id", "process_id"],
        unique=False,
    )
    op.create_table(
        "process_locations",
        sa.Column("process_id", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["locations.id"],
            name=op.f("fk_process_locations_location_id_locations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["processes.id"],
            name=op.f("fk_process_locations_process_id_processes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("process_id", "location_id", name=op.f("pk_process_locations")),
    )
    op.create_index(
        "ix_process_locations_location_id_process_id",
        "process_locations",
        ["location_id", "process_id"],
        unique=False,
    )
    op.create_table(
        "process_resources",
        sa.Column("process_id", sa.BigInteger(), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["processes.id"],
            name=op.f("fk_process_resources_process_id_processes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_process_resources_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("process_id", "resource_id", name=op.f("pk_process_resources")),
    )
    op.create_index(
        "ix_process_resources_resource_id_process_id",
        "process_resources",
        ["resource_id", "process_id"],
        unique=False,
    )
    op.create_table(
        "process_roles",
        sa.Column("process_id", sa.BigInteger(), nullable=False),
        sa.Column("role_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["process_id"],
            ["processes.id"],
            name=op.f("fk_process_roles_process_id_processes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_process_roles_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("process_id", "role_id", name=op.f("pk_process_roles")),
    )
    op.create_index(
        "ix_process_roles_role_id_process_id",
        "process_roles",
        ["role_id", "process_id"],
        unique=False,
    )
    op.add_column("users", sa.Column("department_id", sa.BigInteger(), nullable=True))
    op.add_column("users", sa.Column("location_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_users_department_id_id", "users", ["department_id", "id"], unique=False)
    op.create_index("ix_users_location_id_id", "users", ["location_id", "id"], unique=False)
    op.create_foreign_key(
        op.f("fk_users_location_id_locations"),
        "users",
        "locations",
        ["location_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_foreign_key(
        op.f("fk_users_department_id_departments"),
        "users",
        "departments",
        ["department_id"],
        ["id"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_users_department_id_departments"), "users", type_="foreignkey")
    op.drop_constraint(op.f("fk_users_location_id_locations"), "users", type_="foreignkey")
    op.drop_index("ix_users_location_id_id", table_name="users")
    op.drop_index("ix_users_department_id_id", table_name="users")
    op.drop_column("users", "location_id")
    op.drop_column("users", "department_id")
    op.drop_index("ix_process_roles_role_id_process_id", table_name="process_roles")
    op.drop_table("process_roles")
    op.drop_index("ix_process_resources_resource_id_process_id", table_name="process_resources")
    op.drop_table("process_resources")
    op.drop_index("ix_process_locations_location_id_process_id", table_name="process_locations")
    op.drop_table("process_locations")
    op.drop_index(
        "ix_process_departments_department_id_process_id", table_name="process_departments"
    )
    op.drop_table("process_departments")
    op.drop_index("ix_resources_status_id", table_name="resources")
    op.drop_index("ix_resources_location_id_id", table_name="resources")
    op.drop_index("ix_resources_kind_id", table_name="resources")
    op.drop_index("ix_resources_department_id_id", table_name="resources")
    op.drop_index("ix_resources_created_by_id_id", table_name="resources")
    op.drop_index("ix_resources_created_at_id", table_name="resources")
    op.drop_table("resources")
    op.drop_index("ix_processes_updated_at_id", table_name="processes")
    op.drop_index(
        "ix_processes_title_trgm",
        table_name="processes",
        postgresql_using="gin",
        postgresql_ops={"title": "gin_trgm_ops"},
    )
    op.drop_index("ix_processes_title_id", table_name="processes")
    op.drop_index("ix_processes_status_id", table_name="processes")
    op.drop_index("ix_processes_owner_id_id", table_name="processes")
    op.drop_index(
        "ix_processes_description_trgm",
        table_name="processes",
        postgresql_using="gin",
        postgresql_ops={"description": "gin_trgm_ops"},
    )
    op.drop_index("ix_processes_criticality_id", table_name="processes")
    op.drop_index("ix_processes_created_by_id_id", table_name="processes")
    op.drop_index("ix_processes_created_at_id", table_name="processes")
    op.drop_table("processes")
    op.drop_index("ix_locations_parent_id_id", table_name="locations")
    op.drop_index("ix_locations_kind_id", table_name="locations")
    op.drop_index("ix_locations_created_by_id_id", table_name="locations")
    op.drop_index("ix_locations_created_at_id", table_name="locations")
    op.drop_index("ix_locations_country_id", table_name="locations")
    op.drop_table("locations")
    op.drop_index("uq_departments_parent_id_name", table_name="departments")
    op.drop_index("ix_departments_parent_id_id", table_name="departments")
    op.drop_index(op.f("ix_departments_manager_id"), table_name="departments")
    op.drop_index("ix_departments_created_by_id_id", table_name="departments")
    op.drop_index("ix_departments_created_at_id", table_name="departments")
    op.drop_table("departments")
