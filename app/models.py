"""Every domain's tables, imported once so `Base.metadata` is complete (Alembic reads it)."""

from app.core.database import Base
from app.domains.registry import load_models

load_models()

__all__ = ["Base"]
