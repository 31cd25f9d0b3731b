"""Run Alembic from the application (the only way the schema is made)."""

from __future__ import annotations

from alembic.config import Config

from alembic import command
from app.core.config import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    """An Alembic config bound to `database_url`, independent of the working directory."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate the database down to `revision`."""
    command.downgrade(alembic_config(database_url), revision)
