"""Every domain's tables, imported once so `Base.metadata` is complete (Alembic reads it)."""

from app.core.database import Base
from app.domains.audit.models import AuditEvent
from app.domains.auth.models import RefreshToken
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process.models import (
    Process,
    process_departments,
    process_locations,
    process_resources,
    process_roles,
)
from app.domains.resource.models import Resource
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles

__all__ = [
    "AuditEvent",
    "Base",
    "Department",
    "Location",
    "Process",
    "RefreshToken",
    "Resource",
    "Role",
    "User",
    "process_departments",
    "process_locations",
    "process_resources",
    "process_roles",
    "user_roles",
]
