"""The demo organisation as data: the shape of `demo.json` beside this module, and its loader."""

from __future__ import annotations

from importlib.resources import files
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domains.auth.permissions import PERMISSIONS
from app.domains.dependency.models import DependencyKind
from app.domains.process.models import MAX_REVIEW_INTERVAL_DAYS, Criticality
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


class DependencyData(_Data):
    """`process` needs `needs`: at its own site when that site runs it, else at the first one."""

    process: str
    needs: str
    kind: DependencyKind
    note: str | None = None


class Organisation(_Data):
    """Divisions, sites, room names, resources by kind, job functions, review intervals, staff."""

    divisions: tuple[DivisionData, ...]
    sites: tuple[SiteData, ...]
    rooms: tuple[str, ...]
    resources: dict[ResourceKind, tuple[str, ...]]
    roles: tuple[RoleGroup, ...]
    review_interval_days: dict[
        Criticality, Annotated[int, Field(ge=1, le=MAX_REVIEW_INTERVAL_DAYS)]
    ]
    """How often active processes are reviewed, by criticality."""
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    dependencies: tuple[DependencyData, ...] = ()
    """Which process needs which, by title."""

    @field_validator("review_interval_days")
    @classmethod
    def _every_criticality(cls, intervals: dict[Criticality, int]) -> dict[Criticality, int]:
        if missing := set(Criticality) - set(intervals):
            raise ValueError(f"no review interval for {sorted(missing)}")
        return intervals

    @model_validator(mode="after")
    def _dependencies_name_processes(self) -> Organisation:
        titles = {title for department in self.departments for title in department.processes}
        named = {d.process for d in self.dependencies} | {d.needs for d in self.dependencies}
        if unknown := named - titles:
            raise ValueError(f"dependencies name unknown processes {sorted(unknown)}")
        return self

    @property
    def departments(self) -> list[DepartmentData]:
        """Every division's departments, division by division."""
        return [department for division in self.divisions for department in division.departments]


def load_organisation() -> Organisation:
    """`demo.json`, validated."""
    text = files("app.seed").joinpath("demo.json").read_text(encoding="utf-8")
    return Organisation.model_validate_json(text)
