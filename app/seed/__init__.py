"""Demo data: a believable organisation for demos and load tests (`python -m app seed --demo`).

What the organisation is (divisions, departments, teams and what each does, sites, resources,
job functions, staff names) is data, in `demo.json` beside this module; this module builds it.
Every demo user signs in with the same password: `DEMO_PASSWORD` from the environment, or
`atlas-demo-password` when it is unset; `admin@demo.process-atlas.test` is a superuser.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import BigInteger, Table, column, func, insert, select, text, update, values
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domains.auth.context import AuthContext
from app.domains.auth.permissions import PERMISSIONS
from app.domains.department.models import Department
from app.domains.dependency.models import ProcessDependency
from app.domains.location.models import Location, LocationKind
from app.domains.process.models import (
    Criticality,
    Process,
    ProcessStatus,
    process_departments,
    process_locations,
    process_resources,
    process_roles,
)
from app.domains.resource.models import Resource, ResourceKind, ResourceStatus
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles
from app.seed.organisation import DependencyData, Organisation, SiteData, load_organisation

DEMO_DOMAIN = "demo.process-atlas.test"
DEMO_ADMIN_EMAIL = f"admin@{DEMO_DOMAIN}"
DEFAULT_DEMO_PASSWORD = "atlas-demo-password"  # noqa: S105 (documented demo credential)
SEED_LOCK_ID = 0x5EED_DE30
# Review dates come from a generator of their own: the rest of the organisation is drawn
# from `random.Random(42)` exactly as before they existed.
REVIEW_SEED = 17
USERS = 100
PROCESSES = 500
# Every job function reads everything but the audit trail, besides what its group grants.
READ_ALL = frozenset(p for p in PERMISSIONS if p.endswith(":read") and p != "audit:read")


@dataclass(frozen=True, slots=True)
class SeedReport:
    """Rows per kind (whole tables when the demo already existed) and whether this run made them."""

    created: bool
    departments: int
    locations: int
    resources: int
    roles: int
    users: int
    processes: int


def demo_password() -> str:
    """The password every demo user signs in with (`DEMO_PASSWORD`, or the documented default)."""
    return os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD


async def seed_demo(
    sessionmaker: async_sessionmaker[AsyncSession], auth: AuthContext
) -> SeedReport:
    """Build the demo organisation in one transaction, unless it exists (then change nothing).

    Rows go in set by set (one INSERT ... RETURNING per kind and level) from
    `random.Random(42)`, so two empty databases get the same organisation. Seed rows write
    no audit events: the trail records what people did through the API, and nobody did this.
    Meant for an empty or demo database: a clashing role name or department code aborts it.
    """
    password = demo_password()
    low, high = auth.settings.password_min_length, auth.settings.password_max_length
    if not low <= len(password) <= high:
        raise ValueError(f"DEMO_PASSWORD must have {low} to {high} characters")
    organisation = load_organisation()
    async with sessionmaker() as session, session.begin():
        # Two seeders at once: the second waits here, then finds the first one's admin.
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SEED_LOCK_ID})
        if await session.scalar(select(User.id).where(User.email == DEMO_ADMIN_EMAIL)):
            return await _existing(session)
        password_hash = await auth.passwords.hash(password)
        rng = random.Random(42)  # noqa: S311 (demo data)
        return await _build(session, rng, organisation=organisation, password_hash=password_hash)


async def _existing(session: AsyncSession) -> SeedReport:
    counts = (
        await session.execute(
            select(
                *(
                    select(func.count()).select_from(model).scalar_subquery()
                    for model in (Department, Location, Resource, Role, User, Process)
                )
            )
        )
    ).one()
    return SeedReport(False, *counts)


async def _insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` in one statement; their ids in the order of `rows`."""
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    # render_nulls: otherwise each run of rows with a None value becomes its own INSERT.
    return list(await session.scalars(statement.execution_options(render_nulls=True), rows))


async def _build(
    session: AsyncSession, rng: random.Random, *, organisation: Organisation, password_hash: str
) -> SeedReport:
    admin = {
        "email": DEMO_ADMIN_EMAIL,
        "full_name": "Demo Administrator",
        "job_title": "System Administrator",
        "is_superuser": True,
        "password_hash": password_hash,
    }
    [author] = await _insert(session, User, [admin])
    departments = await _departments(session, organisation, author)
    locations = await _locations(session, organisation.sites, organisation.rooms, author)
    places = [*locations[LocationKind.BUILDING], *locations[LocationKind.ROOM]]
    units = [*departments["department"], *departments["team"]]
    resource_ids = await _insert(
        session,
        Resource,
        [
            {
                "name": name,
                "kind": kind,
                "description": f"{name}, shared by the teams whose processes need it.",
                "status": rng.choices(list(ResourceStatus), weights=(60, 25, 10, 5))[0],
                "quantity": _quantity(rng, kind),
                "location_id": rng.choice(places),
                "department_id": rng.choice(units),
                "created_by_id": author,
            }
            for kind, names in organisation.resources.items()
            for name in names
        ],
    )
    roles = {
        name: sorted(READ_ALL | group.granted)
        for group in organisation.roles
        for name in group.names
    }
    role_rows = [
        {
            "name": name,
            "description": f"The {name} job function.",
            "permissions": permissions,
            "created_by_id": author,
        }
        for name, permissions in roles.items()
    ]
    role_ids = dict(zip(roles, await _insert(session, Role, role_rows), strict=True))
    user_ids = await _users(
        session,
        rng,
        organisation=organisation,
        author=author,
        password_hash=password_hash,
        units=units,
        places=places,
        roles=role_ids,
    )
    await _assign_managers(session, rng, departments=departments, users=user_ids)
    process_ids = await _processes(
        session,
        rng,
        organisation=organisation,
        author=author,
        departments=departments,
        locations=locations,
        users=user_ids,
        resources=resource_ids,
        roles=list(role_ids.values()),
    )
    return SeedReport(
        created=True,
        departments=sum(len(ids) for ids in departments.values()),
        locations=sum(len(ids) for ids in locations.values()),
        resources=len(resource_ids),
        roles=len(role_ids),
        users=len(user_ids) + 1,
        processes=len(process_ids),
    )


def _quantity(rng: random.Random, kind: ResourceKind) -> int:
    if kind is ResourceKind.MATERIAL:
        return rng.randrange(50, 5000, 50)
    if kind is ResourceKind.EQUIPMENT:
        return rng.randint(1, 20)
    return 1


async def _departments(
    session: AsyncSession, organisation: Organisation, author: int
) -> dict[str, list[int]]:
    """Divisions, their departments and their teams: one INSERT per level; ids by level."""
    division_ids = await _insert(
        session,
        Department,
        [
            {
                "name": division.name,
                "code": division.code,
                "description": f"The {division.name} division.",
                "created_by_id": author,
            }
            for division in organisation.divisions
        ],
    )
    units = [
        (division_id, department, f"{division.code}-{department.code}")
        for division_id, division in zip(division_ids, organisation.divisions, strict=True)
        for department in division.departments
    ]
    department_ids = await _insert(
        session,
        Department,
        [
            {"name": department.name, "code": code, "parent_id": parent, "created_by_id": author}
            for parent, department, code in units
        ],
    )
    team_ids = await _insert(
        session,
        Department,
        [
            {
                "name": team,
                "code": f"{code}-{number:02d}",
                "parent_id": parent,
                "created_by_id": author,
            }
            for parent, (_, department, code) in zip(department_ids, units, strict=True)
            for number, team in enumerate(department.teams, start=1)
        ],
    )
    return {"division": division_ids, "department": department_ids, "team": team_ids}


def _location_name(kind: LocationKind, code: str, rooms: tuple[str, ...]) -> str:
    """`Building A`, `Building A, level 1`, `A1.02 Workshop`."""
    if kind is LocationKind.BUILDING:
        return f"Building {code}"
    if kind is LocationKind.FLOOR:
        return f"Building {code[0]}, level {code[1]}"
    return f"{code[:2]}.0{code[2]} {rooms[sum(map(ord, code)) % len(rooms)]}"


async def _locations(
    session: AsyncSession, sites: tuple[SiteData, ...], rooms: tuple[str, ...], author: int
) -> dict[LocationKind, list[int]]:
    """Sites, two buildings each, two levels per building, two rooms per level; ids by kind."""
    site_ids = await _insert(
        session,
        Location,
        [
            {**site.model_dump(), "kind": LocationKind.SITE, "created_by_id": author}
            for site in sites
        ],
    )
    ids = {LocationKind.SITE: site_ids}
    parents = [(site_id, "", site) for site_id, site in zip(site_ids, sites, strict=True)]
    for kind, suffixes in (
        (LocationKind.BUILDING, "AB"),
        (LocationKind.FLOOR, "01"),
        (LocationKind.ROOM, "12"),
    ):
        children = [
            (parent, code + suffix, site) for parent, code, site in parents for suffix in suffixes
        ]
        ids[kind] = await _insert(
            session,
            Location,
            [
                {
                    "name": _location_name(kind, code, rooms),
                    "kind": kind,
                    "city": site.city,
                    "country": site.country,
                    "timezone": site.timezone,
                    "parent_id": parent,
                    "created_by_id": author,
                }
                for parent, code, site in children
            ],
        )
        parents = [
            (new_id, code, site)
            for new_id, (_, code, site) in zip(ids[kind], children, strict=True)
        ]
    remote = {"name": "Remote", "kind": LocationKind.VIRTUAL, "created_by_id": author}
    ids[LocationKind.VIRTUAL] = await _insert(session, Location, [remote])
    return ids


async def _users(
    session: AsyncSession,
    rng: random.Random,
    *,
    organisation: Organisation,
    author: int,
    password_hash: str,
    units: list[int],
    places: list[int],
    roles: dict[str, int],
) -> list[int]:
    """The staff besides the administrator: placed, with one job function (their title) or two."""
    names: list[tuple[str, str]] = []
    while len(names) < USERS - 1:
        name = (rng.choice(organisation.first_names), rng.choice(organisation.last_names))
        if name not in names:
            names.append(name)
    functions = list(roles)
    held = [rng.sample(functions, 2 if rng.random() < 0.3 else 1) for _ in names]
    user_ids = await _insert(
        session,
        User,
        [
            {
                "email": f"{first}.{last}@{DEMO_DOMAIN}".lower(),
                "full_name": f"{first} {last}",
                "job_title": titles[0],
                "password_hash": password_hash,
                "department_id": rng.choice(units),
                "location_id": rng.choice(places),
                "created_by_id": author,
            }
            for (first, last), titles in zip(names, held, strict=True)
        ],
    )
    grants = [{"user_id": author, "role_id": roles["System Administrator"]}]
    grants.extend(
        {"user_id": user_id, "role_id": roles[title]}
        for user_id, titles in zip(user_ids, held, strict=True)
        for title in titles
    )
    await session.execute(insert(user_roles), grants)
    return user_ids


async def _assign_managers(
    session: AsyncSession,
    rng: random.Random,
    *,
    departments: dict[str, list[int]],
    users: list[int],
) -> None:
    """Give every division and department a manager, in one UPDATE."""
    managed = [*departments["division"], *departments["department"]]
    managers = values(
        column("id", BigInteger), column("manager_id", BigInteger), name="managers"
    ).data([(department, rng.choice(users)) for department in managed])
    await session.execute(
        update(Department)
        .where(Department.id == managers.c.id)
        .values(manager_id=managers.c.manager_id)
        .execution_options(synchronize_session=False)
    )


async def _processes(
    session: AsyncSession,
    rng: random.Random,
    *,
    organisation: Organisation,
    author: int,
    departments: dict[str, list[int]],
    locations: dict[LocationKind, list[int]],
    users: list[int],
    resources: list[int],
    roles: list[int],
) -> list[int]:
    """What each department does at some sites, each linked to 1 to 5 of each kind."""
    units, sites = organisation.departments, organisation.sites
    plans = rng.sample(
        [
            (unit, title, site)
            for unit, department in enumerate(units)
            for title in department.processes
            for site in range(len(sites))
        ],
        PROCESSES,
    )
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for unit, title, site in plans:
        age = rng.uniform(1, 720)
        created = now - timedelta(days=age)
        rows.append(
            {
                "title": f"{title} ({sites[site].city})",
                "description": f"How {units[unit].name} does this at the {sites[site].name}.",
                "status": rng.choices(list(ProcessStatus), weights=(15, 75, 10))[0],
                "criticality": rng.choices(list(Criticality), weights=(20, 45, 25, 10))[0],
                "owner_id": rng.choice(users) if rng.random() < 0.95 else None,
                "created_by_id": author,
                "created_at": created,
                "updated_at": created + timedelta(days=rng.uniform(0, min(age, 30))),
            }
        )
    reviews = random.Random(REVIEW_SEED)  # noqa: S311 (demo data)
    for row in rows:
        row.update(_review(reviews, row, now=now, intervals=organisation.review_interval_days))
    process_ids = await _insert(session, Process, rows)

    teams = departments["team"]
    # Where each department's teams start among `teams` (they were inserted in this order).
    first_team = list(accumulate((len(unit.teams) for unit in units), initial=0))
    on_site = [
        [
            locations[LocationKind.SITE][site],
            *locations[LocationKind.BUILDING][2 * site : 2 * site + 2],
            *locations[LocationKind.ROOM][8 * site : 8 * site + 8],
        ]
        for site in range(len(sites))
    ]
    everywhere = [place for ids in locations.values() for place in ids]
    links: dict[Table, list[dict[str, int]]] = {}
    for process_id, (unit, _, site) in zip(process_ids, plans, strict=True):
        own = [departments["department"][unit], *teams[first_team[unit] : first_team[unit + 1]]]
        for table, key, ids in (
            (process_departments, "department_id", _some(rng, own, teams)),
            (process_locations, "location_id", _some(rng, on_site[site], everywhere)),
            (process_resources, "resource_id", _some(rng, resources, resources)),
            (process_roles, "role_id", _some(rng, roles, roles)),
        ):
            links.setdefault(table, []).extend(
                {"process_id": process_id, key: linked} for linked in sorted(ids)
            )
    for table, link_rows in links.items():
        await session.execute(insert(table), link_rows)
    await _dependencies(session, organisation.dependencies, plans=plans, process_ids=process_ids)
    return process_ids


def _review(
    rng: random.Random, process: dict[str, Any], *, now: datetime, intervals: dict[Any, int]
) -> dict[str, Any]:
    """Review fields of a process: active ones mostly follow their criticality's interval.

    One in ten active processes has no interval yet; of the others, one in six was never
    reviewed (overdue once older than its interval), and the rest were last reviewed at
    most 1.3 intervals ago, so almost a quarter of those is late. The last review is an
    update: `updated_at` is never before it.
    """
    if process["status"] is not ProcessStatus.ACTIVE or rng.random() < 0.1:
        return {"review_interval_days": None, "last_reviewed_at": None}
    interval = intervals[process["criticality"]]
    created: datetime = process["created_at"]
    if rng.random() < 1 / 6:
        return {"review_interval_days": interval, "last_reviewed_at": None}
    reviewed = now - timedelta(days=rng.uniform(0, min((now - created).days, interval * 1.3)))
    return {
        "review_interval_days": interval,
        "last_reviewed_at": reviewed,
        "updated_at": max(process["updated_at"], reviewed),
    }


def _some(rng: random.Random, likely: list[int], anywhere: list[int]) -> set[int]:
    """One to five distinct ids: up to four from `likely`, sometimes one more from `anywhere`."""
    chosen = set(rng.sample(likely, rng.randint(1, min(4, len(likely)))))
    if rng.random() < 0.4:
        chosen.add(rng.choice(anywhere))
    return chosen


async def _dependencies(
    session: AsyncSession,
    dependencies: tuple[DependencyData, ...],
    *,
    plans: list[tuple[int, str, int]],
    process_ids: list[int],
) -> None:
    """Which process needs which, in one INSERT.

    A process needs the one its own site runs, or else the first site's (the headquarters'
    when it runs it).
    """
    plan_ids = zip(process_ids, plans, strict=True)
    at = {(title, site): process_id for process_id, (_, title, site) in plan_ids}
    sites_running: dict[str, list[int]] = {}
    for title, site in sorted(at):
        sites_running.setdefault(title, []).append(site)
    rows = [
        {
            "process_id": at[(rule.process, site)],
            "depends_on_id": at[(rule.needs, site if site in needed else needed[0])],
            "kind": rule.kind,
            "note": rule.note,
        }
        for rule in dependencies
        if (needed := sites_running.get(rule.needs))
        for site in sites_running.get(rule.process, [])
    ]
    if rows:
        statement = insert(ProcessDependency).execution_options(render_nulls=True)
        await session.execute(statement, rows)
