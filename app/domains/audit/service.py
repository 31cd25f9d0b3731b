"""Writing the audit trail; every write records its event in its own transaction.

Every domain's writes end the same way, through an `Audited` of its entity type:

    DEPARTMENTS = Audited("department", fields=("name", "code", ...))

    async with DEPARTMENTS.updating(session, department, actor=actor, if_match=if_match) as change:
        ...  # rules that may refuse the write (they raise, and nothing is recorded)
        change.apply(changes)

`creating` adds and flushes the new row (its id is known inside the block) and records the
create; `updating` checks If-Match first, and records (and flushes, as a new version) only
if something changed; `deleting` checks If-Match, lets the block refuse, then deletes. A
violated constraint becomes its domain's error (`app/core/constraints.py`).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.changes import assign
from app.core.constraints import flush
from app.core.logging import request_id_var
from app.core.metrics import AUDIT_EVENTS
from app.core.versioning import check_version
from app.domains import ENTITY_TYPES
from app.domains.audit.models import AuditEvent
from app.domains.auth.principal import Principal

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


class Entity(Protocol):
    """What every audited row has (`EntityMixin`)."""

    id: int
    version: int


class Change:
    """What one write changed, as its audit event records it: `{field: [old, new], ...}`."""

    def __init__(self, entity: object, fields: tuple[str, ...], changes: dict[str, Any]) -> None:
        self.entity = entity
        self.fields = fields
        self.changes = changes

    def apply(self, values: Mapping[str, Any]) -> None:
        """Assign `values` to the entity, recording the audited fields that changed."""
        self.changes.update(apply(self.entity, values, self.fields))

    def links(self, field: str, before: Iterable[int], after: Iterable[int]) -> bool:
        """Record a replaced id set as `{added, removed}`; whether it changed."""
        changed = link_changes(before, after)
        if changed:
            self.changes[field] = changed
        return changed is not None

    def __bool__(self) -> bool:
        return bool(self.changes)


@dataclass(frozen=True, slots=True)
class Audited:
    """How the writes of one entity type end: version check, flush, audit event."""

    entity_type: str
    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.entity_type not in ENTITY_TYPES:
            raise ValueError(
                f"audit entity type {self.entity_type!r} is not in the domain registry "
                f"(app/domains/__init__.py): {', '.join(ENTITY_TYPES)}"
            )

    @asynccontextmanager
    async def creating(
        self, session: AsyncSession, entity: Entity, *, actor: Principal | None
    ) -> AsyncIterator[Change]:
        """Insert `entity` (its id is set inside the block) and record its create event."""
        session.add(entity)
        await flush(session, entity)
        change = Change(entity, self.fields, created(entity, self.fields))
        yield change
        await self._record(session, "create", entity.id, actor, change.changes)

    @asynccontextmanager
    async def updating(
        self,
        session: AsyncSession,
        entity: Entity,
        *,
        actor: Principal | None,
        if_match: list[int] | None,
    ) -> AsyncIterator[Change]:
        """412 unless If-Match names the current version; then a new version if anything changed.

        A change of links alone is a new version too (`updated_at` is set either way).
        """
        check_version(entity.version, if_match)
        change = Change(entity, self.fields, {})
        yield change
        if change:
            entity.updated_at = func.now()  # type: ignore[attr-defined]
            await flush(session, entity)
            await self._record(session, "update", entity.id, actor, change.changes)

    @asynccontextmanager
    async def deleting(
        self,
        session: AsyncSession,
        entity: Entity,
        *,
        actor: Principal | None,
        if_match: list[int] | None,
    ) -> AsyncIterator[None]:
        """412 unless If-Match names the current version; the block may refuse (409)."""
        check_version(entity.version, if_match)
        before = snapshot(entity, self.fields)
        entity_id = entity.id
        yield
        await session.delete(entity)
        await flush(session, entity)
        await self._record(session, "delete", entity_id, actor, deleted(before))

    async def _record(
        self,
        session: AsyncSession,
        action: str,
        entity_id: int,
        actor: Principal | None,
        changes: Mapping[str, Any],
    ) -> None:
        await record(
            session,
            actor_id=actor.user_id if actor is not None else None,
            action=action,
            entity_type=self.entity_type,
            entity_id=entity_id,
            changes=changes,
        )
