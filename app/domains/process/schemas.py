from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from app.core.changes import Omittable
from app.core.database import MAX_BIGINT
from app.core.filters import Timestamp
from app.core.lookups import IdList, StrictId
from app.core.summaries import NamedSummary, PersonSummary
from app.domains.process.models import MAX_REVIEW_INTERVAL_DAYS, Criticality, ProcessStatus

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Description = Annotated[str, StringConstraints(max_length=20000)]
OptionalId = Annotated[int | None, Field(ge=1, le=MAX_BIGINT)]
ReviewInterval = Annotated[
    int,
    Strict(),
    Field(
        ge=1,
        le=MAX_REVIEW_INTERVAL_DAYS,
        description="Days between reviews; the process is overdue this long after the last one.",
    ),
]


class ProcessCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    status: ProcessStatus = ProcessStatus.DRAFT
    criticality: Criticality = Criticality.MEDIUM
    owner_id: StrictId | None = None
    review_interval_days: ReviewInterval | None = None
    department_ids: IdList = Field(default_factory=list)
    location_ids: IdList = Field(default_factory=list)
    resource_ids: IdList = Field(default_factory=list)
    role_ids: IdList = Field(default_factory=list)


class ProcessUpdate(BaseModel):
    """A partial update; a link list that is present replaces the whole set."""

    model_config = ConfigDict(extra="forbid")

    title: Omittable[Title] = None
    description: Description | None = None
    status: Omittable[ProcessStatus] = None
    criticality: Omittable[Criticality] = None
    owner_id: StrictId | None = None
    review_interval_days: ReviewInterval | None = None
    department_ids: Omittable[IdList] = None
    location_ids: Omittable[IdList] = None
    resource_ids: Omittable[IdList] = None
    role_ids: Omittable[IdList] = None


class ProcessRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None
    status: ProcessStatus
    criticality: Criticality
    review_interval_days: int | None
    last_reviewed_at: datetime | None
    review_due_at: datetime | None = Field(
        description="When the next review is due (last review, or creation, plus the interval)."
    )
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
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    review_overdue: bool | None = Field(
        default=None,
        description=(
            "true: only processes whose review is overdue, most overdue first unless `sort` "
            "says otherwise (`sort` may then name `review_due_at`); false: only the others."
        ),
    )
    include_descendants: bool = Field(
        default=False,
        description="With department_id or location_id: also processes of the subtree.",
    )
