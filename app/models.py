"""Every domain's tables, imported once so `Base.metadata` is complete (Alembic reads it)."""

from app.core.database import Base
from app.domains.audit.models import AuditEvent
from app.domains.auth.models import RefreshToken
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles

__all__ = ["AuditEvent", "Base", "RefreshToken", "Role", "User", "user_roles"]
