"""Writing and reading the audit trail; every write records its event in its own transaction."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import assign
from app.core.logging import request_id_var
from app.core.metrics import AUDIT_EVENTS
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.domains.audit.models import AuditEvent
from app.domains.audit.schemas import AuditFilters

keyset = Keyset(AuditEvent.id, {"occurred_at": AuditEvent.occurred_at})

# Never recorded, whatever the entity: secrets have no place in a trail anyone can read.
SECRET_FIELDS = frozenset({"password", "password_hash", "token", "refresh_token"})


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return value


def snapshot(entity: object, fields: Iterable[str]) -> dict[str, Any]:
    """The current values of `fields`, JSON-ready."""
    return {name: _plain(getattr(entity, name)) for name in fields if name not in SECRET_FIELDS}


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """`{field: [old, new]}` for every field whose value changed."""
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if name not in SECRET_FIELDS and before.get(name) != value
    }


def created(entity: object, fields: Iterable[str]) -> dict[str, Any]:
    """The changes of a create: `{field: [None, value]}`."""
    return {name: [None, value] for name, value in snapshot(entity, fields).items()}


def deleted(before: Mapping[str, Any]) -> dict[str, Any]:
    """The changes of a delete, from the snapshot taken before it: `{field: [value, None]}`."""
    return {name: [value, None] for name, value in before.items()}


def apply(entity: object, changes: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """Assign `changes` to `entity`; the audit diff of `fields` they made."""
    fields = tuple(fields)
    before = snapshot(entity, fields)
    assign(entity, dict(changes))
    return diff(before, snapshot(entity, fields))


def link_changes(before: Iterable[int], after: Iterable[int]) -> dict[str, list[int]] | None:
    """`{"added": [...], "removed": [...]}` between two id sets, or None when equal."""
    old, new = set(before), set(after)
    if old == new:
        return None
    return {"added": sorted(new - old), "removed": sorted(old - new)}


async def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str,
    entity_type: str,
    entity_id: int,
    changes: Mapping[str, Any],
) -> AuditEvent:
    """Add an audit event to the current transaction (it commits or rolls back with the write)."""
    event = AuditEvent(
        actor_id=actor_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes={k: v for k, v in changes.items() if k not in SECRET_FIELDS},
        request_id=request_id_var.get(),
    )
    session.add(event)
    AUDIT_EVENTS.labels(entity_type=entity_type, action=action).inc()
    return event


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


async def list_events(
    session: AsyncSession, *, filters: AuditFilters, page: PageParams
) -> PageResult[AuditEvent]:
    return await fetch_page(session, _filtered(filters), keyset, page)
