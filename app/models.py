"""Every domain's tables, imported once so `Base.metadata` is complete (Alembic reads it)."""

from app.core.database import Base
from app.domains import load_models

load_models()

__all__ = ["Base"]
