from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.changes import Omittable
from app.core.database import MAX_BIGINT
from app.core.lookups import IdList, StrictId
from app.core.summaries import NamedSummary
from app.domains.role.schemas import RoleSummary

# Han, kana and Hangul are written together; any other mix of scripts is a likely lookalike.
_EAST_ASIAN = frozenset({"CJK", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"})


def _script(letter: str) -> str:
    script = unicodedata.name(letter, "UNKNOWN").split(" ", 1)[0]
    return "CJK" if script in _EAST_ASIAN else script


def _one_script(email: str) -> str:
    local_part = email.rpartition("@")[0]
    scripts = {_script(c) for c in local_part if unicodedata.category(c) in {"Lu", "Ll", "Lo"}}
    if len(scripts) > 1:
        raise PydanticCustomError(
            "mixed_scripts", "the part before @ mixes alphabets (such as Latin and Cyrillic)"
        )
    return email


Email = Annotated[EmailStr, AfterValidator(_one_script)]
FullName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
JobTitle = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
# The configured bounds (PASSWORD_MIN_LENGTH, PASSWORD_MAX_LENGTH) are checked by the service;
# this only keeps absurd inputs away from the hasher.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    job_title: JobTitle | None = None
    password: Password | None = Field(
        default=None, description="Required, except for a service account, which has none."
    )
    service_account: StrictBool = Field(
        default=False,
        description="No password, no sign-in: it acts through the API tokens a superuser "
        "creates for it (superusers only).",
    )
    is_active: StrictBool = True
    is_superuser: StrictBool = False
    department_id: StrictId | None = None
    location_id: StrictId | None = None
    role_ids: IdList = Field(default_factory=list)

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _password_unless_service_account(self) -> Self:
        if self.service_account and self.password is not None:
            raise PydanticCustomError(
                "service_account_password", "a service account has no password"
            )
        if not self.service_account and self.password is None:
            raise PydanticCustomError(
                "missing_password", "password is required (unless service_account is true)"
            )
        return self


class UserUpdate(BaseModel):
    """An administrator's partial update; `role_ids`, when present, replaces the set."""

    model_config = ConfigDict(extra="forbid")

    email: Omittable[Email] = None
    full_name: Omittable[FullName] = None
    job_title: JobTitle | None = None
    password: Password | None = None
    is_active: Omittable[StrictBool] = None
    is_superuser: Omittable[StrictBool] = None
    department_id: StrictId | None = None
    location_id: StrictId | None = None
    role_ids: IdList | None = None

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class UserSelfUpdate(BaseModel):
    """What anyone may change about themselves; anything else is refused."""

    model_config = ConfigDict(extra="forbid")

    full_name: Omittable[FullName] = None
    job_title: JobTitle | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: Password


class UserRead(BaseModel):
    id: int
    email: str
    full_name: str
    job_title: str | None
    is_active: bool
    is_superuser: bool
    is_service_account: bool
    department: NamedSummary | None
    location: NamedSummary | None
    roles: list[RoleSummary]
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None
    version: int


class UserFilters(BaseModel):
    q: Annotated[str | None, StringConstraints(max_length=200)] = Field(
        default=None, description="Case-insensitive text in email or full name."
    )
    is_active: bool | None = None
    is_superuser: bool | None = None
    is_service_account: bool | None = None
    role_id: Annotated[int | None, Field(ge=1, le=MAX_BIGINT)] = None
    department_id: Annotated[int | None, Field(ge=1, le=MAX_BIGINT)] = None
    location_id: Annotated[int | None, Field(ge=1, le=MAX_BIGINT)] = None
    created_by_id: Annotated[int | None, Field(ge=1, le=MAX_BIGINT)] = None
