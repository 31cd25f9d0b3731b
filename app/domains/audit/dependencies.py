from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.domains.auth.dependencies import require
from app.domains.auth.principal import Principal

AuditRead = Annotated[Principal, Depends(require("audit:read"))]
