"""The demo organisation as data: the shape of `demo.json` beside this module, and its loader."""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from app.domains.auth.permissions import PERMISSIONS
from app.domains.resource.models import ResourceKind


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DepartmentData(_Data):
    """A department of a division: its teams and the titles of its processes."""

    name: str
    code: str
    teams: tuple[str, ...]
    processes: tuple[str, ...]


class DivisionData(_Data):
    name: str
    code: str
    departments: tuple[DepartmentData, ...]


class SiteData(_Data):
    name: str
    city: str
    country: str
    timezone: str
    address_line1: str
    postal_code: str


class RoleGroup(_Data):
    """Job functions that may change the same things (`all`: everything) besides reading."""

    grants: Literal["all"] | frozenset[str]
    names: tuple[str, ...]

    @field_validator("grants")
    @classmethod
    def _known(cls, grants: Literal["all"] | frozenset[str]) -> Literal["all"] | frozenset[str]:
        if grants != "all" and (unknown := grants - PERMISSIONS):
            raise ValueError(f"unknown permissions {sorted(unknown)}")
        return grants

    @property
    def granted(self) -> frozenset[str]:
        """The permissions this group grants besides reading."""
        return PERMISSIONS if self.grants == "all" else self.grants


class Organisation(_Data):
    """Divisions, sites, room names, resources by kind, job functions and staff names."""

    divisions: tuple[DivisionData, ...]
    sites: tuple[SiteData, ...]
    rooms: tuple[str, ...]
    resources: dict[ResourceKind, tuple[str, ...]]
    roles: tuple[RoleGroup, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]

    @property
    def departments(self) -> list[DepartmentData]:
        """Every division's departments, division by division."""
        return [department for division in self.divisions for department in division.departments]


def load_organisation() -> Organisation:
    """`demo.json`, validated."""
    text = files("app.seed").joinpath("demo.json").read_text(encoding="utf-8")
    return Organisation.model_validate_json(text)
