from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.database import SessionDep
from app.core.errors import AUTHENTICATED_ERRORS
from app.core.pagination import Page, PageParamsDep, PageResult
from app.domains.audit import queries as audit_queries
from app.domains.audit.dependencies import AuditRead
from app.domains.audit.schemas import AuditEventRead, AuditFilters

router = APIRouter(prefix="/audit-events", tags=["audit"])


@router.get("", response_model=Page[AuditEventRead], responses=AUTHENTICATED_ERRORS)
async def list_audit_events(
    _: AuditRead,
    session: SessionDep,
    page: PageParamsDep,
    filters: Annotated[AuditFilters, Query()],
) -> PageResult[AuditEventRead]:
    """The audit trail, newest last by default (`sort=-occurred_at` for newest first)."""
    return await audit_queries.list(session, filters=filters, page=page)
