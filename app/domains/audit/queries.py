"""Reading the audit trail: a filtered page of events."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditEventRead, AuditFilters

keyset = Keyset(AuditEvent.id, {"occurred_at": AuditEvent.occurred_at})


def _filtered(filters: AuditFilters) -> Select[AuditEvent]:
    statement = select(AuditEvent)
    if filters.entity_type is not None:
        statement = statement.where(AuditEvent.entity_type == filters.entity_type)
    if filters.entity_id is not None:
        statement = statement.where(AuditEvent.entity_id == filters.entity_id)
    if filters.actor_id is not None:
        statement = statement.where(AuditEvent.actor_id == filters.actor_id)
    if filters.action is not None:
        statement = statement.where(AuditEvent.action == filters.action)
    if filters.occurred_after is not None:
        statement = statement.where(AuditEvent.occurred_at >= filters.occurred_after)
    if filters.occurred_before is not None:
        statement = statement.where(AuditEvent.occurred_at < filters.occurred_before)
    return statement


async def list(
    session: AsyncSession, *, filters: AuditFilters, page: PageParams
) -> PageResult[AuditEventRead]:
    """A page of audit events."""
    result = await fetch_page(session, _filtered(filters), keyset, page)
    items = [AuditEventRead.model_validate(event) for event in result.items]
    return PageResult(items, result.next_cursor, result.total)
