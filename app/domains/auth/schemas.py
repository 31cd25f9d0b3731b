from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from app.core.database import MAX_BIGINT
from app.core.lookups import StrictId
from app.domains.auth.permissions import Permissions


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutRequest(BaseModel):
    refresh_token: str | None = Field(default=None, min_length=1, max_length=256)


class PermissionRead(BaseModel):
    code: str
    description: str


ApiTokenName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ApiTokenName = Field(description="What the token is for: `nightly export`.")
    permissions: Permissions = Field(
        description="What the token may do: codes of GET /permissions, each held by its owner."
    )
    expires_in_days: Annotated[int, Strict(), Field(ge=1)] | None = Field(
        default=None,
        description="Days until it expires, at most `API_TOKEN_MAX_DAYS` (365 by default), "
        "which is also the default.",
    )
    user_id: StrictId | None = Field(
        default=None,
        description="The service account to create it for (superusers only); omitted: yourself.",
    )


class ApiTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    permissions: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = Field(description="Updated at most once a minute.")


class ApiTokenCreated(ApiTokenRead):
    token: str = Field(description="The token itself, shown this once: store it now.")


class ApiTokenFilters(BaseModel):
    user_id: Annotated[int | None, Field(ge=1, le=MAX_BIGINT)] = Field(
        default=None, description="Whose tokens (superusers only); omitted: your own."
    )
