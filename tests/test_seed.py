"""The demo organisation: its size, its shape, its logins, and that seeding twice is a no-op."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from httpx import AsyncClient
from sqlalchemy import Select, Table, event, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domains.auth.context import AuthContext
from app.domains.department.models import Department
from app.domains.dependency.models import DependencyKind, ProcessDependency
from app.domains.dependency.queries import cycles_among
from app.domains.location.countries import COUNTRY_CODES
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
from app.domains.resource.models import Resource
from app.domains.role.models import Role
from app.domains.user.models import User, user_roles
from app.seed import DEFAULT_DEMO_PASSWORD, DEMO_ADMIN_EMAIL, SeedReport, seed_demo
from app.seed.organisation import load_organisation
from tests.auth.helpers import bearer, tokens

MODELS = {
    "departments": Department,
    "locations": Location,
    "resources": Resource,
    "roles": Role,
    "users": User,
    "processes": Process,
}


@pytest.fixture
async def report(
    sessionmaker: async_sessionmaker[AsyncSession],
    auth: AuthContext,
    clean: None,
    monkeypatch: pytest.MonkeyPatch,
) -> SeedReport:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    return await seed_demo(sessionmaker, auth)


async def _counts(session: AsyncSession) -> dict[str, int]:
    return {
        name: await session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in MODELS.items()
    }


async def test_builds_an_organisation_of_the_promised_size(
    report: SeedReport, session: AsyncSession
) -> None:
    counts = await _counts(session)
    assert report.created
    assert counts == {name: getattr(report, name) for name in MODELS}
    assert counts["users"] == 100
    assert counts["processes"] == 500
    assert all(counts[name] >= 60 for name in MODELS)
    assert await session.scalar(select(func.count()).select_from(user_roles)) >= 100


@pytest.mark.parametrize(
    ("table", "key"),
    [
        (process_departments, "department_id"),
        (process_locations, "location_id"),
        (process_resources, "resource_id"),
        (process_roles, "role_id"),
    ],
)
async def test_every_process_links_one_to_five_of_each_kind(
    report: SeedReport, session: AsyncSession, table: Table, key: str
) -> None:
    per_process = (
        select(Process.id, func.count(table.c[key]).label("links"))
        .outerjoin(table, table.c.process_id == Process.id)
        .group_by(Process.id)
        .subquery()
    )
    fewest, most, processes = (
        await session.execute(
            select(
                func.min(per_process.c.links),
                func.max(per_process.c.links),
                func.count(),
            )
        )
    ).one()
    assert processes == 500
    assert (fewest, most) == (1, 5)


@pytest.mark.parametrize("model", [Department, Location])
async def test_departments_and_locations_form_trees(
    report: SeedReport, session: AsyncSession, model: type[Department] | type[Location]
) -> None:
    roots = select(model.id, literal(0).label("depth")).where(model.parent_id.is_(None))
    tree = roots.cte("tree", recursive=True)
    tree = tree.union_all(
        select(model.id, (tree.c.depth + 1).label("depth")).where(model.parent_id == tree.c.id)
    )
    reached = (await session.execute(select(tree.c.id, tree.c.depth))).all()
    total = await session.scalar(select(func.count()).select_from(model))
    # Every row is reached from a root exactly once: no cycles, no row with two paths.
    assert len(reached) == len({row.id for row in reached}) == total
    assert 1 < max(row.depth for row in reached) <= 3


async def test_department_codes_are_unique_and_sibling_names_differ(
    report: SeedReport, session: AsyncSession
) -> None:
    rows = (
        await session.execute(select(Department.parent_id, Department.name, Department.code))
    ).all()
    assert all(row.code for row in rows)
    assert len({row.code for row in rows}) == len(rows)
    assert len({(row.parent_id, row.name.lower()) for row in rows}) == len(rows)
    child = Department.__table__.alias("child")
    unmanaged_parents = await session.scalar(
        select(func.count(func.distinct(Department.id)))
        .join(child, child.c.parent_id == Department.id)
        .where(Department.manager_id.is_(None))
    )
    assert unmanaged_parents == 0


async def test_locations_nest_by_kind_with_real_places(
    report: SeedReport, session: AsyncSession
) -> None:
    parent = Location.__table__.alias("parent")
    pairs = (
        await session.execute(
            select(Location.kind, parent.c.kind).join(parent, parent.c.id == Location.parent_id)
        )
    ).all()
    allowed = {
        (LocationKind.BUILDING, LocationKind.SITE),
        (LocationKind.FLOOR, LocationKind.BUILDING),
        (LocationKind.ROOM, LocationKind.FLOOR),
    }
    assert {(child, LocationKind(above)) for child, above in pairs} == allowed
    for location in await session.scalars(select(Location)):
        ZoneInfo(location.timezone)
        if location.kind is not LocationKind.VIRTUAL:
            assert location.country in COUNTRY_CODES
            assert location.city


async def test_demo_users_log_in_with_the_demo_password(
    report: SeedReport, session: AsyncSession, client: AsyncClient
) -> None:
    admin = await tokens(client, DEMO_ADMIN_EMAIL, DEFAULT_DEMO_PASSWORD)
    me = await client.get("/api/v1/users/me", headers=bearer(admin["access_token"]))
    assert me.json()["is_superuser"] is True
    staff = await session.scalar(
        select(User).where(User.is_superuser.is_(False)).order_by(User.id.desc()).limit(1)
    )
    assert staff is not None
    assert staff.department_id is not None
    assert staff.location_id is not None
    assert staff.job_title
    assert await tokens(client, staff.email, DEFAULT_DEMO_PASSWORD)
    hashes = await session.scalar(select(func.count(func.distinct(User.password_hash))))
    assert hashes == 1  # hashed once, shared by every demo user


async def test_demo_user_permissions_come_from_their_job_function(
    report: SeedReport, session: AsyncSession, client: AsyncClient
) -> None:
    def holder(*, audits: bool) -> Select[tuple[str]]:
        granted = Role.permissions.contains(["audit:read"])
        return (
            select(User.email)
            .join(user_roles, user_roles.c.user_id == User.id)
            .join(Role, Role.id == user_roles.c.role_id)
            .where(User.is_superuser.is_(False))
            .group_by(User.email)
            .having(func.bool_or(granted) if audits else ~func.bool_or(granted))
            .order_by(User.email)
            .limit(1)
        )

    for audits, expected in ((True, 200), (False, 403)):
        email = await session.scalar(holder(audits=audits))
        assert email is not None
        token = (await tokens(client, email, DEFAULT_DEMO_PASSWORD))["access_token"]
        response = await client.get("/api/v1/audit-events", headers=bearer(token))
        assert response.status_code == expected


async def test_a_second_run_changes_nothing(
    report: SeedReport,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    auth: AuthContext,
) -> None:
    before = await _counts(session)
    newest = await session.scalar(select(func.max(Process.updated_at)))
    again = await seed_demo(sessionmaker, auth)
    assert again.created is False
    assert {name: getattr(again, name) for name in MODELS} == before
    assert await _counts(session) == before
    assert await session.scalar(select(func.max(Process.updated_at))) == newest


async def test_seeding_is_set_based(
    sessionmaker: async_sessionmaker[AsyncSession], auth: AuthContext, clean: None
) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(Engine, "before_cursor_execute", count)
    try:
        assert (await seed_demo(sessionmaker, auth)).created
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    # Thousands of rows; a few dozen statements (row-by-row inserts would need thousands).
    assert len(statements) < 30, len(statements)


async def test_active_processes_follow_a_review_policy_and_some_are_overdue(
    report: SeedReport, session: AsyncSession, client: AsyncClient
) -> None:
    policy = load_organisation().review_interval_days
    rows = (await session.execute(select(Process, func.now()))).all()
    reviewed = [process for process, _ in rows if process.review_interval_days is not None]
    assert all(p.status is ProcessStatus.ACTIVE for p in reviewed)
    assert all(p.review_interval_days == policy[p.criticality] for p in reviewed)
    assert 0.6 < len(reviewed) / len(rows) < 0.8
    now = rows[0][1]
    for process in reviewed:
        if process.last_reviewed_at is not None:
            assert process.created_at <= process.last_reviewed_at <= process.updated_at <= now
    overdue = [p for p in reviewed if p.review_due_at is not None and p.review_due_at < now]
    assert 0.1 < len(overdue) / len(reviewed) < 0.4
    # Low ones are reviewed every two years, and no demo process is that old.
    assert {p.criticality for p in overdue} == set(Criticality) - {Criticality.LOW}
    assert any(p.last_reviewed_at is None for p in overdue)

    admin = await tokens(client, DEMO_ADMIN_EMAIL, DEFAULT_DEMO_PASSWORD)
    page = await client.get(
        "/api/v1/processes",
        headers=bearer(admin["access_token"]),
        params={"review_overdue": "true", "include_total": "true", "limit": 5},
    )
    assert page.json()["total"] == len(overdue)
    most_overdue = sorted(overdue, key=lambda p: (p.review_due_at, p.id))[:5]
    assert [item["id"] for item in page.json()["items"]] == [p.id for p in most_overdue]


async def test_processes_depend_on_each_other_mostly_at_their_own_site(
    report: SeedReport, session: AsyncSession, client: AsyncClient
) -> None:
    needing, needed = Process.__table__.alias("needing"), Process.__table__.alias("needed")
    edges = (
        await session.execute(
            select(
                needing.c.id, needing.c.title, needed.c.id, needed.c.title, ProcessDependency.kind
            )
            .join(needing, needing.c.id == ProcessDependency.process_id)
            .join(needed, needed.c.id == ProcessDependency.depends_on_id)
        )
    ).all()
    assert 250 <= len(edges) <= 600
    assert {edge.kind for edge in edges} == set(DependencyKind)

    def city(title: str) -> str:
        return title.rsplit("(", 1)[1]

    same_site = [edge for edge in edges if city(edge[1]) == city(edge[3])]
    assert len(same_site) / len(edges) > 0.8
    assert any(
        edge[1].startswith("Dispatch shipments") and edge[3].startswith("Pick and pack orders")
        for edge in same_site
    )
    # The data team's loop (load the warehouse, publish dashboards, fix what they show) is the
    # only one, at every site that runs all three.
    cycles = cycles_among(
        {edge[0] for edge in edges} | {edge[2] for edge in edges},
        [(edge[2], edge[0]) for edge in edges],
    )
    titles = {edge[0]: edge[1] for edge in edges} | {edge[2]: edge[3] for edge in edges}
    assert cycles
    loop = {"Load the data warehouse", "Publish a dashboard", "Fix a data quality issue"}
    assert all({titles[i].rsplit(" (", 1)[0] for i in cycle} == loop for cycle in cycles)

    # Chains: from a lead to a shipment, four dependencies downstream at some site.
    admin = await tokens(client, DEMO_ADMIN_EMAIL, DEFAULT_DEMO_PASSWORD)
    leads = [edge[2] for edge in edges if edge[3].startswith("Qualify a lead")]
    deepest = 0
    for lead in set(leads):
        graph = await client.get(
            f"/api/v1/processes/{lead}/graph",
            headers=bearer(admin["access_token"]),
            params={"direction": "downstream", "depth": 10},
        )
        deepest = max(deepest, *(node["depth"] for node in graph.json()["nodes"]))
    assert deepest >= 4
