from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.changes import Omittable
from app.domains.auth.permissions import Permissions

RoleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Description = Annotated[str, StringConstraints(max_length=5000)]


class RoleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: RoleName
    description: Description | None = None
    permissions: Permissions = Field(default_factory=list)


class RoleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Omittable[RoleName] = None
    description: Description | None = None
    permissions: Omittable[Permissions] = None


class RoleSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str


class RoleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    permissions: list[str]
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None
    version: int


class RoleFilters(BaseModel):
    q: Annotated[str | None, StringConstraints(max_length=200)] = Field(
        default=None, description="Case-insensitive text in the name."
    )
    permission: Annotated[str | None, StringConstraints(max_length=64)] = Field(
        default=None, description="Roles that grant this permission."
    )
