from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.changes import Omittable
from app.core.lookups import OptionalId, StrictId
from app.core.summaries import PersonSummary

DepartmentName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
DepartmentCode = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
    Field(description="A short code, unique across all departments (case-sensitive)."),
]
Description = Annotated[str, StringConstraints(max_length=5000)]


class DepartmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DepartmentName = Field(description="Unique among its siblings, ignoring case.")
    code: DepartmentCode | None = None
    description: Description | None = None
    parent_id: StrictId | None = Field(
        default=None, description="The parent department; none: a root."
    )
    manager_id: StrictId | None = Field(default=None, description="The user who manages it.")


class DepartmentUpdate(BaseModel):
    """A partial update: absent fields stay as they are; null clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: Omittable[DepartmentName] = None
    code: DepartmentCode | None = None
    description: Description | None = None
    parent_id: StrictId | None = None
    manager_id: StrictId | None = None


class DepartmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    code: str | None
    description: str | None
    parent_id: int | None
    manager: PersonSummary | None
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None
    version: int


class DepartmentNode(BaseModel):
    """A department in a subtree, with its children nested."""

    id: int
    name: str
    code: str | None
    parent_id: int | None
    manager_id: int | None
    children: list[DepartmentNode]


class DepartmentFilters(BaseModel):
    q: Annotated[str | None, StringConstraints(max_length=200)] = Field(
        default=None, description="Case-insensitive text in the name or code."
    )
    parent_id: OptionalId = Field(default=None, description="Direct children of this one.")
    root: bool | None = Field(
        default=None, description="`true`: only top-level departments; `false`: only the others."
    )
    manager_id: OptionalId = None
    created_by_id: OptionalId = None
