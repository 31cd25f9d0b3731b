"""The domain registry: routers, models, permissions, audit types and constraints derive from it.

Adding a domain is a new folder under `app/domains/` (the same files as the others) and one
line in `DOMAINS`. This module names the domains and imports nothing of them at import
time; `app/api/router.py`, `app/models.py` and `app/main.py` import their modules from it.
The architecture contracts of pyproject.toml name every package below it (`app.domains.*`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

from fastapi import APIRouter

from app.core.constraints import register_constraints


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    """The folder under app/domains/."""
    collection: str | None = None
    """Grants `<collection>:read` and `<collection>:write`; None for a domain without its own."""
    describes: str = ""
    """What the permissions cover, for the catalogue: "processes and their links"."""
    entity_type: str | None = None
    """What the audit trail calls its entities; None when the domain writes none."""
    routers: tuple[str, ...] = ("router",)
    """The routers of its `router.py`, by name, in the order requests try them."""
    busiest: bool = False
    """Its routes are tried first (about 1.5 us per route tried before the match)."""

    def module(self, name: str) -> ModuleType:
        return import_module(f"app.domains.{self.name}.{name}")


# The order of the permission catalogue and of the audit entity types. Requests try the
# routes of the `busiest` domains first: processes are most of the traffic
# (docs/benchmarks.md, change 7).
DOMAINS: tuple[Domain, ...] = (
    Domain("user", "users", "users", "user"),
    Domain("role", "roles", "roles and their permissions", "role"),
    Domain("department", "departments", "departments", "department"),
    Domain("location", "locations", "locations", "location"),
    Domain("resource", "resources", "resources", "resource"),
    Domain(
        "process",
        "processes",
        "processes and their links",
        "process",
        routers=("router", "reverse_router"),
        busiest=True,
    ),
    # Dependencies between processes, the graph and impact analysis: processes' permissions,
    # and a change is audited as an update of the process.
    Domain("dependency"),
    # Export and import of every collection: each collection's permissions. Entity ids in
    # paths are `{x_id:int}`, so `/processes/export` never reaches `/processes/{process_id}`.
    Domain("exchange"),
    Domain("auth", entity_type="api_token"),
    Domain("audit"),
)

COLLECTIONS: dict[str, str] = {d.collection: d.describes for d in DOMAINS if d.collection}
ENTITY_TYPES: tuple[str, ...] = tuple(d.entity_type for d in DOMAINS if d.entity_type)


def routers() -> list[APIRouter]:
    """Every domain's routers: the busiest domains' first, then in `DOMAINS` order."""
    ordered = sorted(DOMAINS, key=lambda domain: not domain.busiest)
    return [getattr(d.module("router"), name) for d in ordered for name in d.routers]


def load_models() -> None:
    """Import every domain's models, so that `Base.metadata` holds every table."""
    for domain in DOMAINS:
        domain.module("models")


def register_domain_constraints() -> None:
    """Register the `CONSTRAINTS` each domain declares in its exceptions.py."""
    for domain in DOMAINS:
        register_constraints(getattr(domain.module("exceptions"), "CONSTRAINTS", {}))
