"""Demo data: a believable organisation for demos and load tests (`python -m app seed --demo`).

Every demo user signs in with the same password: `DEMO_PASSWORD` from the environment, or
`atlas-demo-password` when it is unset; `admin@demo.process-atlas.test` is a superuser.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Table, column, func, insert, select, text, update, values
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domains.auth.context import AuthContext
from app.domains.auth.permissions import PERMISSIONS
from app.domains.department.models import Department
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

DEMO_DOMAIN = "demo.process-atlas.test"
DEMO_ADMIN_EMAIL = f"admin@{DEMO_DOMAIN}"
DEFAULT_DEMO_PASSWORD = "atlas-demo-password"  # noqa: S105 (documented demo credential)
SEED_LOCK_ID = 0x5EED_DE30
USERS = 100
PROCESSES = 500

# Division -> department (code) -> teams.
DIVISIONS: dict[tuple[str, str], dict[tuple[str, str], tuple[str, ...]]] = {
    ("Operations", "OPS"): {
        ("Manufacturing", "MFG"): ("Assembly", "Machining", "Production Planning"),
        ("Logistics", "LOG"): ("Inbound", "Warehousing", "Outbound Transport"),
        ("Quality", "QA"): ("Quality Control", "Supplier Quality", "Metrology"),
        ("Maintenance", "MNT"): ("Mechanical", "Electrical", "Reliability Engineering"),
        ("Procurement", "PRC"): ("Direct Purchasing", "Indirect Purchasing", "Supplier Mgmt"),
    },
    ("Commercial", "COM"): {
        ("Sales", "SAL"): ("Key Accounts", "Inside Sales", "Sales Operations"),
        ("Marketing", "MKT"): ("Brand", "Digital Marketing", "Events"),
        ("Customer Service", "CS"): ("Order Desk", "Returns", "Technical Support"),
        ("Product Management", "PM"): ("Roadmap", "Pricing", "Product Data"),
    },
    ("Corporate Services", "CORP"): {
        ("Finance", "FIN"): ("Accounts Payable", "Accounts Receivable", "Controlling"),
        ("Human Resources", "HR"): ("Recruiting", "Payroll", "Learning & Development"),
        ("Legal & Compliance", "LEG"): ("Contracts", "Regulatory Affairs", "Data Protection"),
        ("Facilities", "FAC"): ("Workplace", "Security", "Health & Safety"),
    },
    ("Technology", "TECH"): {
        ("IT Operations", "ITO"): ("Service Desk", "Infrastructure", "End-User Computing"),
        ("Software Engineering", "ENG"): ("Platform", "Integration", "Quality Assurance"),
        ("Information Security", "SEC"): ("Security Operations", "Identity & Access", "GRC"),
        ("Data & Analytics", "DAT"): ("Data Engineering", "Business Intelligence", "Data Science"),
    },
}

# What each department does: titles of its processes (each run at several sites).
PROCESS_NAMES: dict[str, tuple[str, ...]] = {
    "Manufacturing": (
        "Plan production runs", "Change over a line", "Release a work order",
        "Report scrap", "Run a shift handover",
    ),
    "Logistics": (
        "Receive inbound goods", "Pick and pack orders", "Dispatch shipments",
        "Count inventory", "Book a carrier",
    ),
    "Quality": (
        "Inspect incoming material", "Handle a non-conformance", "Calibrate gauges",
        "Run a supplier audit", "Approve a first article",
    ),
    "Maintenance": (
        "Run preventive maintenance", "Repair a breakdown", "Order spare parts",
        "Lock out and tag out a machine", "Commission new equipment",
    ),
    "Procurement": (
        "Onboard a supplier", "Raise a purchase order", "Run a tender",
        "Renegotiate a framework agreement", "Evaluate supplier performance",
    ),
    "Sales": (
        "Qualify a lead", "Prepare a quotation", "Renew a contract",
        "Forecast monthly sales", "Approve a discount",
    ),
    "Marketing": (
        "Launch a campaign", "Plan a trade fair", "Approve marketing copy",
        "Publish a newsletter", "Update the website",
    ),
    "Customer Service": (
        "Take a customer order", "Process a return", "Resolve a complaint",
        "Escalate a technical case", "Survey customer satisfaction",
    ),
    "Product Management": (
        "Approve a price change", "Publish product data", "Retire a product",
        "Prioritise the roadmap", "Launch a product",
    ),
    "Finance": (
        "Pay supplier invoices", "Close the month", "Collect overdue payments",
        "Prepare the annual budget", "Reconcile bank accounts",
    ),
    "Human Resources": (
        "Hire an employee", "Onboard a new hire", "Run monthly payroll",
        "Conduct performance reviews", "Offboard a leaver",
    ),
    "Legal & Compliance": (
        "Review a contract", "Answer a data subject request", "Report an incident",
        "Screen a business partner", "Register a trademark",
    ),
    "Facilities": (
        "Book a meeting room", "Issue a visitor badge", "Run a fire drill",
        "Move a workplace", "Inspect safety equipment",
    ),
    "IT Operations": (
        "Provision a laptop", "Reset a password", "Patch the servers",
        "Restore a backup", "Handle a service request",
    ),
    "Software Engineering": (
        "Release software", "Review a code change", "Handle an outage",
        "Run a post-incident review", "Plan a sprint",
    ),
    "Information Security": (
        "Grant system access", "Triage a security alert", "Review access rights",
        "Run a phishing exercise", "Assess a vendor's security",
    ),
    "Data & Analytics": (
        "Publish a dashboard", "Load the data warehouse", "Request a report",
        "Train a forecasting model", "Fix a data quality issue",
    ),
}  # fmt: skip

# Site, city, country, timezone, street address, postal code.
SITES = (
    ("London Headquarters", "London", "GB", "Europe/London", "1 Finsbury Avenue", "EC2M 2PF"),
    ("Berlin Plant", "Berlin", "DE", "Europe/Berlin", "Am Borsigturm 100", "13507"),
    ("Lyon Distribution Centre", "Lyon", "FR", "Europe/Paris", "12 Rue de la Villette", "69003"),
    ("Toronto Office", "Toronto", "CA", "America/Toronto", "100 King Street West", "M5X 1A9"),
    ("Austin Technology Campus", "Austin", "US", "America/Chicago", "500 W 2nd Street", "78701"),
    ("Singapore Regional Hub", "Singapore", "SG", "Asia/Singapore", "8 Marina View", "018960"),
)
ROOMS = ("Meeting Room", "Workshop", "Stores", "Lab", "Server Room", "Training Room", "Office")

RESOURCES: dict[ResourceKind, tuple[str, ...]] = {
    ResourceKind.EQUIPMENT: (
        "Forklift", "Pallet jack", "CNC milling machine", "Industrial 3D printer",
        "Coordinate measuring machine", "Torque wrench set", "Label printer",
        "Barcode scanner fleet", "Laptop pool", "Video conferencing kit", "Oscilloscope",
        "Reach truck",
    ),
    ResourceKind.SYSTEM: (
        "ERP system", "CRM system", "HR information system", "IT service management",
        "Issue tracker", "Team wiki", "Warehouse management system", "Shop-floor MES",
        "BI platform", "Single sign-on", "Source code hosting", "Security event monitoring",
    ),
    ResourceKind.MATERIAL: (
        "Steel sheet stock", "Aluminium extrusions", "Packaging cartons", "Stretch film",
        "Shipping labels", "Safety gloves", "Lubricants", "Spare fasteners", "Printer toner",
        "Cleaning supplies",
    ),
    ResourceKind.FACILITY: (
        "Loading dock", "Clean room", "Training centre", "Data centre hall", "Quality lab",
        "Canteen", "Cold store", "Mail room", "Visitor reception", "Parking garage",
    ),
    ResourceKind.DOCUMENT: (
        "Quality manual", "Employee handbook", "Standard operating procedures",
        "Business continuity plan", "Information security policy", "Supplier code of conduct",
        "Product specifications", "Safety data sheets", "Chart of accounts", "Brand guidelines",
    ),
    ResourceKind.OTHER: (
        "Corporate credit cards", "Company vehicles", "Courier contract", "Translation service",
        "External audit firm", "Recruitment agency",
    ),
}  # fmt: skip

READ_ALL = frozenset(p for p in PERMISSIONS if p.endswith(":read") and p != "audit:read")
# Job functions, grouped by what they may change besides reading everything.
ROLE_GRANTS: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset(), (
        "Machine Operator", "Assembly Technician", "Forklift Driver", "Sales Representative",
        "Account Manager", "Marketing Specialist", "Software Engineer", "Data Analyst",
        "Service Desk Analyst", "Accountant", "Legal Counsel", "Administrative Assistant",
        "Intern",
    )),
    (frozenset({"processes:write"}), (
        "Process Owner", "Business Process Analyst", "Operations Manager", "Production Planner",
        "Shift Supervisor", "Logistics Coordinator", "Supply Chain Planner",
        "Customer Service Lead", "Sales Operations Analyst", "Marketing Operations Manager",
        "Product Manager", "Finance Controller", "Accounts Payable Specialist",
        "Payroll Specialist", "Lean Six Sigma Black Belt", "Continuous Improvement Lead",
    )),
    (frozenset({"processes:write", "resources:write", "audit:read"}), (
        "Quality Manager", "Quality Engineer", "Quality Inspector", "Compliance Officer",
        "Health and Safety Officer", "Risk Manager",
    )),
    (frozenset({"resources:write"}), (
        "Maintenance Technician", "Maintenance Planner", "Warehouse Manager",
        "Inventory Controller", "Procurement Specialist", "Buyer", "IT Asset Manager",
        "Fleet Manager",
    )),
    (frozenset({"locations:write", "resources:write"}), (
        "Facilities Manager", "Site Manager", "Workplace Coordinator", "Security Supervisor",
    )),
    (frozenset({"users:write", "departments:write"}), (
        "HR Business Partner", "Recruiter", "Learning and Development Specialist",
        "HR Operations Specialist", "Department Head",
    )),
    (frozenset({"audit:read"}), (
        "Internal Auditor", "External Auditor", "Data Protection Officer",
        "Information Security Analyst",
    )),
    (PERMISSIONS, (
        "System Administrator", "Identity and Access Administrator", "Enterprise Architect",
        "Chief Operating Officer",
    )),
)  # fmt: skip

FIRST_NAMES = (
    "Amara", "Hiroshi", "Priya", "Lukas", "Camille", "Wei", "Sofia", "Mateo", "Aisha", "Oliver",
    "Ingrid", "Rahul", "Chloe", "Tomasz", "Fatima", "Jonas", "Elena", "Kwame", "Hannah",
    "Diego", "Mei", "Samuel", "Nadia", "Erik", "Leila", "Arjun", "Grace", "Mohammed", "Julia",
    "Pedro", "Yuki", "Emma", "Omar", "Freya", "Daniel", "Zara", "Felix", "Ana", "Noah", "Layla",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Tanaka", "Sharma", "Becker", "Dubois", "Chen", "Rossi", "Garcia", "Rahman",
    "Smith", "Larsen", "Gupta", "Martin", "Kowalski", "Haddad", "Schmidt", "Petrova", "Mensah",
    "Brown", "Fernandez", "Wong", "Cohen", "Hansen", "Johansson", "Karimi", "Patel", "Murphy",
    "Ali", "Novak", "Silva", "Sato", "Taylor", "Nasser", "Nielsen", "Levy", "Ahmed", "Weber",
    "Costa", "Walker", "Lee",
)  # fmt: skip


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
    async with sessionmaker() as session, session.begin():
        # Two seeders at once: the second waits here, then finds the first one's admin.
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SEED_LOCK_ID})
        if await session.scalar(select(User.id).where(User.email == DEMO_ADMIN_EMAIL)):
            return await _existing(session)
        password_hash = await auth.passwords.hash(password)
        return await _build(session, random.Random(42), password_hash)  # noqa: S311 (demo data)


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


async def _build(session: AsyncSession, rng: random.Random, password_hash: str) -> SeedReport:
    admin = {
        "email": DEMO_ADMIN_EMAIL,
        "full_name": "Demo Administrator",
        "job_title": "System Administrator",
        "is_superuser": True,
        "password_hash": password_hash,
    }
    [author] = await _insert(session, User, [admin])
    departments = await _departments(session, author)
    locations = await _locations(session, author)
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
            for kind, names in RESOURCES.items()
            for name in names
        ],
    )
    roles = {name: sorted(READ_ALL | grants) for grants, names in ROLE_GRANTS for name in names}
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


async def _departments(session: AsyncSession, author: int) -> dict[str, list[int]]:
    """Divisions, their departments and their teams: one INSERT per level; ids by level."""
    division_ids = await _insert(
        session,
        Department,
        [
            {
                "name": name,
                "code": code,
                "description": f"The {name} division.",
                "created_by_id": author,
            }
            for name, code in DIVISIONS
        ],
    )
    units = [
        (division_id, name, f"{division_code}-{code}", teams)
        for division_id, ((_, division_code), children) in zip(
            division_ids, DIVISIONS.items(), strict=True
        )
        for (name, code), teams in children.items()
    ]
    department_ids = await _insert(
        session,
        Department,
        [
            {"name": name, "code": code, "parent_id": parent, "created_by_id": author}
            for parent, name, code, _ in units
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
            for parent, (_, _, code, teams) in zip(department_ids, units, strict=True)
            for number, team in enumerate(teams, start=1)
        ],
    )
    return {"division": division_ids, "department": department_ids, "team": team_ids}


def _location_name(kind: LocationKind, code: str) -> str:
    """`Building A`, `Building A, level 1`, `A1.02 Workshop`."""
    if kind is LocationKind.BUILDING:
        return f"Building {code}"
    if kind is LocationKind.FLOOR:
        return f"Building {code[0]}, level {code[1]}"
    return f"{code[:2]}.0{code[2]} {ROOMS[sum(map(ord, code)) % len(ROOMS)]}"


async def _locations(session: AsyncSession, author: int) -> dict[LocationKind, list[int]]:
    """Sites, two buildings each, two levels per building, two rooms per level; ids by kind."""
    site_ids = await _insert(
        session,
        Location,
        [
            {
                "name": name,
                "kind": LocationKind.SITE,
                "address_line1": street,
                "city": city,
                "postal_code": postal_code,
                "country": country,
                "timezone": timezone,
                "created_by_id": author,
            }
            for name, city, country, timezone, street, postal_code in SITES
        ],
    )
    ids = {LocationKind.SITE: site_ids}
    parents = [(site_id, "", site) for site_id, site in zip(site_ids, SITES, strict=True)]
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
                    "name": _location_name(kind, code),
                    "kind": kind,
                    "city": city,
                    "country": country,
                    "timezone": timezone,
                    "parent_id": parent,
                    "created_by_id": author,
                }
                for parent, code, (_, city, country, timezone, *_) in children
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
    author: int,
    password_hash: str,
    units: list[int],
    places: list[int],
    roles: dict[str, int],
) -> list[int]:
    """The staff besides the administrator: placed, with one job function (their title) or two."""
    names: list[tuple[str, str]] = []
    while len(names) < USERS - 1:
        name = (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
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
    author: int,
    departments: dict[str, list[int]],
    locations: dict[LocationKind, list[int]],
    users: list[int],
    resources: list[int],
    roles: list[int],
) -> list[int]:
    """What each department does at some sites, each linked to 1 to 5 of each kind."""
    units = [name for children in DIVISIONS.values() for name, _ in children]
    plans = rng.sample(
        [
            (unit, title, site)
            for unit, name in enumerate(units)
            for title in PROCESS_NAMES[name]
            for site in range(len(SITES))
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
                "title": f"{title} ({SITES[site][1]})",
                "description": f"How {units[unit]} does this at the {SITES[site][0]}.",
                "status": rng.choices(list(ProcessStatus), weights=(15, 75, 10))[0],
                "criticality": rng.choices(list(Criticality), weights=(20, 45, 25, 10))[0],
                "owner_id": rng.choice(users) if rng.random() < 0.95 else None,
                "created_by_id": author,
                "created_at": created,
                "updated_at": created + timedelta(days=rng.uniform(0, min(age, 30))),
            }
        )
    process_ids = await _insert(session, Process, rows)

    teams = departments["team"]
    on_site = [
        [
            locations[LocationKind.SITE][site],
            *locations[LocationKind.BUILDING][2 * site : 2 * site + 2],
            *locations[LocationKind.ROOM][8 * site : 8 * site + 8],
        ]
        for site in range(len(SITES))
    ]
    everywhere = [place for ids in locations.values() for place in ids]
    links: dict[Table, list[dict[str, int]]] = {}
    for process_id, (unit, _, site) in zip(process_ids, plans, strict=True):
        own = [departments["department"][unit], *teams[3 * unit : 3 * unit + 3]]
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
    return process_ids


def _some(rng: random.Random, likely: list[int], anywhere: list[int]) -> set[int]:
    """One to five distinct ids: up to four from `likely`, sometimes one more from `anywhere`."""
    chosen = set(rng.sample(likely, rng.randint(1, min(4, len(likely)))))
    if rng.random() < 0.4:
        chosen.add(rng.choice(anywhere))
    return chosen
