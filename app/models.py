"""Every domain's tables, imported once so `Base.metadata` is complete (Alembic reads it)."""

from app.core.database import Base

__all__ = ["Base"]
