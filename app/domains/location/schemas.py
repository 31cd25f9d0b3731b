from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.core.changes import Omittable
from app.core.lookups import OptionalId, StrictId
from app.domains.location.countries import COUNTRY_CODES
from app.domains.location.models import Location, LocationKind

# Read once: the IANA names by their lower-cased form, so "europe/paris" finds "Europe/Paris".
# "localtime" and "posixrules" are files of the system's zoneinfo, not IANA zone names.
TIMEZONES = {name.lower(): name for name in available_timezones() - {"localtime", "posixrules"}}


def _known_country(code: str) -> str:
    if code not in COUNTRY_CODES:
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _known_timezone(name: str) -> str:
    canonical = TIMEZONES.get(name.lower())
    if canonical is None:
        raise ValueError(f"{name!r} is not an IANA time zone name (such as 'Europe/Paris')")
    return canonical


LocationName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Country = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2),
    AfterValidator(_known_country),
    Field(description="ISO 3166-1 alpha-2 code (`FR`); lower case is accepted.", examples=["FR"]),
]
Timezone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_known_timezone),
    Field(description="An IANA time zone name.", examples=["Europe/Paris"]),
]
AddressLine = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
City = Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)]
PostalCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)]


class Address(BaseModel):
    """A postal address; every part is optional."""

    model_config = ConfigDict(extra="forbid")

    line1: AddressLine | None = None
    city: City | None = None
    postal_code: PostalCode | None = None
    country: Country | None = None


class LocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: LocationName
    kind: LocationKind
    address: Address = Field(default_factory=Address)
    timezone: Timezone = "UTC"
    parent_id: StrictId | None = Field(
        default=None, description="The parent location; none: a root."
    )


class LocationUpdate(BaseModel):
    """A partial update: absent fields stay as they are; null clears an optional one.

    In `address`, only the parts sent change; `"address": null` clears the whole address.
    """

    model_config = ConfigDict(extra="forbid")

    name: Omittable[LocationName] = None
    kind: Omittable[LocationKind] = None
    address: Address | None = None
    timezone: Omittable[Timezone] = None
    parent_id: StrictId | None = None


class LocationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: LocationKind
    address: Address
    timezone: str
    parent_id: int | None
    created_at: datetime
    updated_at: datetime
    created_by_id: int | None
    version: int

    @model_validator(mode="before")
    @classmethod
    def _nest_address(cls, value: Any) -> Any:
        """Rows keep the address in flat columns; the API shows it as one object."""
        if not isinstance(value, Location):
            return value
        fields = {name: getattr(value, name) for name in cls.model_fields if name != "address"}
        address = Address.model_construct(
            line1=value.address_line1,
            city=value.city,
            postal_code=value.postal_code,
            country=value.country,
        )
        return {**fields, "address": address}


class LocationNode(BaseModel):
    """A location in a subtree, with its children nested."""

    id: int
    name: str
    kind: LocationKind
    parent_id: int | None
    children: list[LocationNode]


class LocationFilters(BaseModel):
    q: Annotated[str | None, StringConstraints(max_length=200)] = Field(
        default=None, description="Case-insensitive text in the name or city."
    )
    kind: LocationKind | None = None
    country: Country | None = None
    parent_id: OptionalId = Field(default=None, description="Direct children of this one.")
    root: bool | None = Field(
        default=None, description="`true`: only top-level locations; `false`: only the others."
    )
    created_by_id: OptionalId = None
