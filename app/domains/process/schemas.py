from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from app.core.database import MAX_BIGINT
from app.core.lookups import IdList
from app.core.summaries import NamedSummary, PersonSummary
from app.domains.process.models import Criticality, ProcessStatus

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Description = Annotated[str, StringConstraints(max_length=20000)]
OptionalId = Annotated[int | None, Field(ge=1, le=MAX_BIGINT)]


class ProcessCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    status: ProcessStatus = ProcessStatus.DRAFT
    criticality: Criticality = Criticality.MEDIUM
    owner_id: OptionalId = None
    department_ids: IdList = Field(default_factory=list)
    location_ids: IdList = Field(default_factory=list)
    resource_ids: IdList = Field(default_factory=list)
    role_ids: IdList = Field(default_factory=list)


class ProcessUpdate(BaseModel):
    """A partial update; a link list that is present replaces the whole set."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    status: ProcessStatus | None = None
    criticality: Criticality | None = None
    owner_id: OptionalId = None
    department_ids: IdList | None = None
    location_ids: IdList | None = None
    resource_ids: IdList | None = None
    role_ids: IdList | None = None


class ProcessRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None
    status: ProcessStatus
    criticality: Criticality
    owner: PersonSummary | None
    departments: list[NamedSummary]
    locations: list[NamedSummary]
    resources: list[NamedSummary]
    roles: list[NamedSummary]
    created_at: datetime
    updated_at: datetime
    created_by: PersonSummary | None
    version: int


class ProcessFilters(BaseModel):
    q: Annotated[str | None, StringConstraints(max_length=200)] = Field(
        default=None, description="Case-insensitive text in title or description."
    )
    status: list[ProcessStatus] | None = Field(default=None, max_length=3)
    criticality: list[Criticality] | None = Field(default=None, max_length=4)
    department_id: OptionalId = None
    location_id: OptionalId = None
    resource_id: OptionalId = None
    role_id: OptionalId = None
    owner_id: OptionalId = None
    created_by_id: OptionalId = None
    created_after: AwareDatetime | None = None
    created_before: AwareDatetime | None = None
    include_descendants: bool = Field(
        default=False,
        description="With department_id or location_id: also processes of the subtree.",
    )
