from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from app.core.database import MAX_BIGINT
from app.core.filters import Timestamp
from app.domains import ENTITY_TYPES

Action = Literal["create", "update", "delete"]
if TYPE_CHECKING:
    EntityType = str
else:  # what the audit trail calls each domain's entities (app/domains/__init__.py)
    EntityType = Literal[ENTITY_TYPES]


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    actor_id: int | None
    action: Action
    entity_type: EntityType
    entity_id: int
    changes: dict[str, Any]
    request_id: str | None
    occurred_at: datetime


class AuditFilters(BaseModel):
    entity_type: EntityType | None = None
    entity_id: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None
    actor_id: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None
    action: Action | None = None
    occurred_after: Timestamp | None = None
    occurred_before: Timestamp | None = None
