from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS
from app.core.pagination import Page, PageParamsDep, PageResult
from app.domains.audit import service as audit_service
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditEventRead, AuditFilters
from app.domains.auth.dependencies import AuditRead

router = APIRouter(prefix="/audit-events", tags=["audit"])


@router.get("", response_model=Page[AuditEventRead], responses=AUTHENTICATED_ERRORS)
async def list_audit_events(
    _: AuditRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[AuditFilters, Query()],
) -> PageResult[AuditEvent]:
    """The audit trail, newest last by default (`sort=-occurred_at` for newest first)."""
    return await audit_service.list_events(session, filters=filters, page=page)
