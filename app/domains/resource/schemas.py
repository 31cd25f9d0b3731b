from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from app.core.changes import Omittable
from app.core.database import MAX_BIGINT
from app.core.lookups import OptionalId, StrictId
from app.core.summaries import NamedSummary
from app.domains.resource.models import ResourceKind, ResourceStatus

ResourceName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Description = Annotated[str, StringConstraints(max_length=5000)]
Quantity = Annotated[int, Strict(), Field(ge=0, le=MAX_BIGINT)]


class ResourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ResourceName
    kind: ResourceKind
    description: Description | None = None
    status: ResourceStatus = ResourceStatus.AVAILABLE
    quantity: Quantity = 1
    location_id: StrictId | None = None
    department_id: StrictId | None = None


class ResourceUpdate(BaseModel):
    """A partial update; `location_id` or `department_id` sent as null unlinks it."""

    model_config = ConfigDict(extra="forbid")

    name: Omittable[ResourceName] = None
    kind: Omittable[ResourceKind] = None
    description: Description | None = None
    status: Omittable[ResourceStatus] = None
    quantity: Omittable[Quantity] = None
    location_id: StrictId | None = None
    department_id: StrictId | None = None


class ResourceRead(BaseModel):
    id: int
    name: str
    kind: ResourceKind
    description: str | None
    status: ResourceStatus
    quantity: int
    location: NamedSummary | None
    department: NamedSummary | None
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None
    version: int


class ResourceFilters(BaseModel):
    q: Annotated[str | None, StringConstraints(max_length=200)] = Field(
        default=None, description="Case-insensitive text in the name or description."
    )
    kind: ResourceKind | None = None
    status: ResourceStatus | None = None
    location_id: OptionalId = None
    department_id: OptionalId = None
    created_by_id: OptionalId = None
