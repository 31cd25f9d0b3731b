"""One million processes: bulk generation, and EXPLAIN ANALYZE of every list the API runs.

    .venv/bin/python locust/million.py generate [--processes 1000000]
    .venv/bin/python locust/million.py explain  [--out docs-ready markdown file]
    .venv/bin/python locust/million.py dependencies   # (re)make the dependencies only
    .venv/bin/python locust/million.py graph    [--repeat 50] [--out markdown file]

`generate` makes a separate database (`atlas_million`, or BENCH_MILLION_DATABASE),
migrates it, seeds the demo organisation and adds the processes in bulk with
`INSERT ... SELECT generate_series` (never one request at a time): two links of each
kind per process, statuses, criticalities, owners and creation dates spread like the
demo's, then ANALYZE.

`explain` builds the statements exactly as the API does (`process_queries` filters,
`Keyset.apply` with a real cursor) and, for each, times the first page against a page deep
in the keyset order (a cursor 90 % of the way through) and prints the plan, flagging any
sequential scan of processes or a link table.

`generate` also makes the dependencies between the processes (`dependencies` remakes them
alone), about 3 a process, shaped like an organisation's (`DEPENDENCIES` says how), and a
site linked to 1 % of the processes, `Hamburg Plant`. `graph` measures the graph and impact
routes through the whole application, in-process: latency percentiles of `GET /impact` for
that site and for the most linked location, of `GET /processes/{id}/graph` at depths 3 and
10 from a spread of processes, then the plans (`EXPLAIN (ANALYZE, BUFFERS)`) of the
statements as the API builds them, flagging any sequential scan of processes, a link table
or the dependencies; and, once processes have review dates, the overdue filter's first and
deep pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench

DATABASE = os.environ.get("BENCH_MILLION_DATABASE", "atlas_million")

GENERATE = [
    "SET synchronous_commit = off",
    "SET maintenance_work_mem = '512MB'",
    """
    INSERT INTO processes (title, description, status, criticality, owner_id, created_by_id,
                           created_at, updated_at{review_columns})
    SELECT verb[1 + g % array_length(verb, 1)] || ' ' || noun[1 + (g / 7) % array_length(noun, 1)]
               || ' #' || g,
           'Generated process ' || g || ' for the ' || noun[1 + (g / 3) % array_length(noun, 1)]
               || ' team.',
           CASE WHEN g % 100 < 15 THEN 'draft' WHEN g % 100 < 90 THEN 'active' ELSE 'retired' END,
           CASE WHEN (g * 7) % 100 < 20 THEN 'low' WHEN (g * 7) % 100 < 65 THEN 'medium'
                WHEN (g * 7) % 100 < 90 THEN 'high' ELSE 'critical' END,
           CASE WHEN g % 20 = 0 THEN NULL ELSE users[1 + (g * 13) % array_length(users, 1)] END,
           users[1],
           created,
           created + (g % 30) * interval '1 day'{review_values}
    FROM generate_series(1, {count}) AS g,
         (SELECT array_agg(id ORDER BY id) AS users FROM users) AS u,
         LATERAL (SELECT now() - interval '720 days' * (g::float / {count})
                         - (g % 997) * interval '1 second' AS created) AS c,
         (SELECT ARRAY['Approve', 'Audit', 'Book', 'Calibrate', 'Dispatch', 'Handle',
                       'Onboard', 'Plan', 'Publish', 'Reconcile', 'Release', 'Review']
                 AS verb,
                 ARRAY['supplier', 'invoice', 'shipment', 'contract', 'laptop', 'payroll',
                       'campaign', 'incident', 'work order', 'budget', 'badge', 'report']
                 AS noun) AS words{review_from}
    """,
]
# Review dates, once processes have them (migration 0005), spread like the demo's: active
# processes but 1 in 10 follow their criticality's interval; 1 in 6 of those was never
# reviewed, the others last at most 1.3 intervals ago.
REVIEWS = {
    "review_columns": ", review_interval_days, last_reviewed_at",
    "review_values": """,
           r.interval_days,
           CASE WHEN r.interval_days IS NULL OR g % 6 = 1 THEN NULL
                ELSE now() - ((g * 37) % 100) / 100.0
                             * least(now() - created, interval '1 day' * 1.3 * r.interval_days)
           END""",
    "review_from": """,
         LATERAL (SELECT CASE WHEN g % 100 >= 15 AND g % 100 < 90 AND g % 10 <> 3 THEN
                         CASE WHEN (g * 7) % 100 < 20 THEN 730 WHEN (g * 7) % 100 < 65 THEN 365
                              WHEN (g * 7) % 100 < 90 THEN 180 ELSE 90 END
                         END AS interval_days) AS r""",
}
NO_REVIEWS = dict.fromkeys(REVIEWS, "")

LINKS = {
    "process_departments": ("department_id", "departments", 17),
    "process_locations": ("location_id", "locations", 29),
    "process_resources": ("resource_id", "resources", 31),
    "process_roles": ("role_id", "roles", 37),
}

LINK_INSERT = """
INSERT INTO {table} (process_id, {column})
SELECT p.id, t.ids[1 + ((p.id * {step} + j * 7) % t.n)]
FROM processes AS p,
     (SELECT array_agg(id ORDER BY id) AS ids, count(*)::int AS n FROM {target}) AS t,
     generate_series(0, 1) AS j
WHERE p.id > :after
ON CONFLICT DO NOTHING
"""


def generate(count: int) -> None:
    """A fresh database with the demo organisation, then `count` processes in bulk."""
    server_url, redis_url = bench.resolve_servers()
    env = {**os.environ, "REDIS_URL": redis_url}
    url = bench.with_database(server_url, DATABASE)
    bench.drop(url)
    print(f"million: creating, migrating and seeding {DATABASE}")
    bench.prepare_database(server_url, DATABASE, env)
    asyncio.run(_bulk(url, count))


async def _bulk(url: str, count: int) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"server_settings": {"jit": "off"}})
    try:
        async with engine.begin() as connection:
            after = (await connection.execute(text("SELECT max(id) FROM processes"))).scalar()
            reviewed = (
                await connection.execute(
                    text(
                        "SELECT 1 FROM information_schema.columns WHERE table_name = 'processes'"
                        " AND column_name = 'review_interval_days'"
                    )
                )
            ).scalar()
            parts = REVIEWS if reviewed else NO_REVIEWS
            for statement in GENERATE:
                started = time.monotonic()
                await connection.execute(text(statement.format(count=int(count), **parts)))
                print(f"million: {statement.split()[0]} ... {time.monotonic() - started:.0f}s")
            for table, (column, target, step) in LINKS.items():
                started = time.monotonic()
                sql = LINK_INSERT.format(table=table, column=column, target=target, step=step)
                await connection.execute(text(sql), {"after": after})
                print(f"million: {table} in {time.monotonic() - started:.0f}s")
            await _dependencies(connection, after=after)
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
            total = (await connection.execute(text("SELECT count(*) FROM processes"))).scalar()
        print(f"million: {total} processes in {DATABASE}")
    finally:
        await engine.dispose()


# --- dependencies -----------------------------------------------------------------------

# Processes whose ids are equal modulo the number of locations (when the links were made)
# share their two locations: they are one site's. With g = id - the last demo id, s = g / n
# (the step within the site) and n the number of locations, a process needs:
#   1. input: the previous step at its site (value chains of 6 steps; unbroken chains of
#      ~66 steps where (s / 60) % 97 = 5: the long chains),
#   2. input: the step before that (steps 2-5 of a chain, 3 in 4 processes),
#   3. approval: the head of its group of 36 steps at its site (6 chains),
#   4. service: the head of the previous group at its site,
#   5. input: a hand-off from the process before it in id order, at another site (1 in 20),
#   6. service: one of the 1,000 shared services (g a multiple of 1,000), at any site (1 in 25),
#   7. input: 3 steps further along its own chain, closing a cycle of 4 (16 of them).
# About 3.2 a process; most stay within a site, so a site's failure reaches other sites
# only through hand-offs and shared services. `ON CONFLICT` drops rules that coincide.
DEPENDENCIES = """
INSERT INTO process_dependencies (process_id, depends_on_id, kind)
SELECT :after + p.g, :after + e.target, e.kind
FROM (SELECT id - :after AS g, (id - :after) / :n AS s FROM processes WHERE id > :after) AS p
CROSS JOIN LATERAL (VALUES
    (p.g - :n, 'input', p.s % 6 <> 0 OR (p.s / 60) % 97 = 5),
    (p.g - 2 * :n, 'input', p.s % 6 >= 2 AND p.g % 4 <> 0),
    (p.g - :n * (p.s % 36), 'approval', p.s % 36 <> 0 AND p.s % 6 <> 1),
    (p.g - :n * (p.s % 36 + 36), 'service', p.s % 36 <> 0),
    (p.g - 1, 'input', p.g % 20 = 1),
    (1000 * (1 + (p.g * 7919) % greatest(:count / 1000, 1)), 'service', p.g % 25 = 2),
    (p.g + 3 * :n, 'input', p.g % 9973 = 0 AND p.s % 6 = 0)
) AS e(target, kind, wanted)
WHERE e.wanted AND e.target BETWEEN 1 AND :count AND e.target <> p.g
ON CONFLICT DO NOTHING
"""
REVERSE_INDEX = "ix_process_dependencies_depends_on_id_process_id"
SITE = "Hamburg Plant"
# The site's processes: one id class modulo the number of locations, 1/91 of them here.
SITE_LINKS = """
INSERT INTO process_locations (process_id, location_id)
SELECT p.id, :site FROM processes AS p WHERE p.id > :after AND (p.id - :after) % :n = 17
"""


async def _dependencies(connection: Any, *, after: int) -> None:
    """The dependencies between the generated processes, and the 1 % site; in `connection`'s
    transaction. The reverse index is built after the rows, as a bulk load does."""
    from sqlalchemy import text

    count = (await connection.execute(text("SELECT max(id) FROM processes"))).scalar() - after
    # The locations the links were made with: every one but the site added below.
    n = (
        await connection.execute(
            text("SELECT count(*) FROM locations WHERE name <> :name"), {"name": SITE}
        )
    ).scalar()
    started = time.monotonic()
    await connection.execute(text("DELETE FROM process_dependencies"))
    await connection.execute(text(f"DROP INDEX IF EXISTS {REVERSE_INDEX}"))
    values = {"after": after, "count": count, "n": n}
    await connection.execute(text(DEPENDENCIES), values)
    await connection.execute(
        text(f"CREATE INDEX {REVERSE_INDEX} ON process_dependencies (depends_on_id, process_id)")
    )
    edges = (await connection.execute(text("SELECT count(*) FROM process_dependencies"))).scalar()
    print(
        f"million: {edges:,} dependencies ({edges / max(count, 1):.2f} a process) "
        f"in {time.monotonic() - started:.0f}s"
    )
    site = (
        await connection.execute(
            text("SELECT id FROM locations WHERE name = :name"), {"name": SITE}
        )
    ).scalar()
    if site is None:
        site = (
            await connection.execute(
                text(
                    "INSERT INTO locations (name, kind, city, country, timezone) VALUES "
                    "(:name, 'site', 'Hamburg', 'DE', 'Europe/Berlin') RETURNING id"
                ),
                {"name": SITE},
            )
        ).scalar()
        await connection.execute(text(SITE_LINKS), {"site": site, "after": after, "n": n})
    print(f"million: {SITE} (location {site}) linked to 1 / {n} of the processes")


def remake_dependencies() -> None:
    """Make the dependencies (and the 1 % site) of an existing `atlas_million` again."""
    server_url, _ = bench.resolve_servers()
    asyncio.run(_remake(bench.with_database(server_url, DATABASE)))


async def _remake(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"server_settings": {"jit": "off"}})
    try:
        async with engine.begin() as connection:
            await connection.execute(text("SET synchronous_commit = off"))
            await connection.execute(text("SET maintenance_work_mem = '512MB'"))
            after = (
                await connection.execute(
                    text("SELECT min(id) - 1 FROM processes WHERE description LIKE 'Generated %'")
                )
            ).scalar()
            await _dependencies(connection, after=after)
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE process_dependencies"))
            await connection.execute(text("VACUUM ANALYZE process_locations"))
    finally:
        await engine.dispose()


# --- explain ----------------------------------------------------------------------------


def _filters() -> dict[str, dict[str, Any]]:
    """Every filter of GET /processes, with values that select a realistic share."""
    since = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    before = (datetime.now(UTC) - timedelta(days=600)).isoformat()
    return {
        "none": {},
        "q=invoice": {"q": "invoice"},
        "q=#12345 (rare)": {"q": "#12345"},
        "status=retired": {"status": ["retired"]},
        "criticality=critical": {"criticality": ["critical"]},
        "status=draft&criticality=high": {"status": ["draft"], "criticality": ["high"]},
        "department_id": {"department_id": "department"},
        "department_id&include_descendants": {
            "department_id": "root_department",
            "include_descendants": True,
        },
        "location_id": {"location_id": "location"},
        "location_id&include_descendants": {
            "location_id": "root_location",
            "include_descendants": True,
        },
        "resource_id": {"resource_id": "resource"},
        "role_id": {"role_id": "role"},
        "owner_id": {"owner_id": "user"},
        "created_by_id": {"created_by_id": "author"},
        "created_after (last 30 days)": {"created_after": since},
        "created_before (oldest 120 days)": {"created_before": before},
    }


SORTS = (None, "-created_at", "title", "-updated_at", "status", "criticality")


async def explain(repeat: int) -> str:
    """Time first and deep pages of every filter and sort; the report as markdown."""
    from sqlalchemy import event, func, select

    from app.core.config import Settings
    from app.core.database import create_engine, create_sessionmaker
    from app.core.pagination import PageParams
    from app.domains.department.models import Department
    from app.domains.location.models import Location
    from app.domains.process import queries as process_queries
    from app.domains.process.models import (
        Process,
        process_departments,
        process_locations,
        process_resources,
        process_roles,
    )
    from app.domains.process.queries import PROCESSES_BY_IDS
    from app.domains.process.schemas import ProcessFilters

    server_url, _ = bench.resolve_servers()
    url = bench.with_database(server_url, DATABASE)
    engine = create_engine(Settings(database_url=url, db_statement_timeout_ms=0), url)

    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _capture(*args: Any) -> None:
        statement, parameters, context = args[2], args[3], args[4]
        if context.execution_options.get("capture"):
            captured.append((statement, parameters))

    sessionmaker = create_sessionmaker(engine)
    lines: list[str] = []
    keyset = process_queries.keyset
    async with sessionmaker() as session:
        total = await session.scalar(select(func.count()).select_from(Process))

        async def most_linked(link: Any, column: str) -> int:
            statement = (
                select(link.c[column])
                .group_by(link.c[column])
                .order_by(func.count().desc())
                .limit(1)
            )
            value: int = await session.scalar(statement)
            return value

        ids = {
            "department": await most_linked(process_departments, "department_id"),
            "location": await most_linked(process_locations, "location_id"),
            "resource": await most_linked(process_resources, "resource_id"),
            "role": await most_linked(process_roles, "role_id"),
            "user": await session.scalar(
                select(Process.owner_id)
                .where(Process.owner_id.is_not(None))
                .group_by(Process.owner_id)
                .order_by(func.count().desc())
                .limit(1)
            ),
            "author": await session.scalar(select(func.min(Process.created_by_id))),
            "root_department": await session.scalar(
                select(Department.id).where(Department.parent_id.is_(None)).limit(1)
            ),
            "root_location": await session.scalar(
                select(Location.id).where(Location.parent_id.is_(None)).limit(1)
            ),
        }

        async def captured_sql(statement: Any) -> tuple[str, Any]:
            connection = await session.connection()
            await connection.execute(statement.execution_options(capture=True))
            return captured[-1]

        async def explained_ms(sql: str, parameters: Any) -> float:
            connection = await session.connection()
            result = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE) {sql}", parameters)
            last = [row[0] for row in result.all()][-1]
            return float(last.split(":")[1].split()[0])

        async def timed(statement: Any) -> tuple[float, float]:
            """Best and median server-side time of a page's two statements, milliseconds.

            The page's keys (`statement`), then its processes by id (`PROCESSES_BY_IDS`),
            summed per run (EXPLAIN ANALYZE).
            """
            keys_sql, keys_parameters = await captured_sql(statement)
            connection = await session.connection()
            ids = [row.id for row in (await connection.execute(statement)).all()][:50]
            by_ids_sql, by_ids_parameters = await captured_sql(PROCESSES_BY_IDS.params(ids=ids))
            durations = []
            for _ in range(repeat):
                durations.append(
                    await explained_ms(keys_sql, keys_parameters)
                    + await explained_ms(by_ids_sql, by_ids_parameters)
                )
            return min(durations), statistics.median(durations)

        async def plan(statement: Any) -> str:
            sql, parameters = await captured_sql(statement)
            connection = await session.connection()
            result = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {sql}", parameters
            )
            return "\n".join(row[0] for row in result.all())

        def deep_cursor_statement(conditions: list[Any], sort: str | None, depth: int) -> Any:
            order = keyset.order(sort)
            columns = [item.column for item in order]
            statement = select(*columns).where(*conditions)
            statement = statement.order_by(
                *(
                    c.desc() if item.descending else c.asc()
                    for c, item in zip(columns, order, strict=True)
                )
            )
            return statement.offset(depth).limit(1)

        lines.append(f"# EXPLAIN ANALYZE with {total:,} processes\n")
        lines.append(
            "Server-side execution time (EXPLAIN ANALYZE, best and median of "
            f"{repeat} runs) of the "
            "two statements of a page exactly as the API builds them (limit 50: the page's "
            "51 keys, then its 50 processes by id with links embedded), summed; 'deep' "
            "starts from a real cursor 90 % of the way through the filtered rows in that "
            "sort order.\n"
        )
        lines.append(
            "| filter | sort | rows matching | first page ms (best / median) | "
            "deep page ms (best / median) | deep / first (best) |"
        )
        lines.append("| --- | --- | ---: | ---: | ---: | ---: |")
        plans: list[str] = []
        for label, raw in _filters().items():
            values = {k: ids[v] if isinstance(v, str) and v in ids else v for k, v in raw.items()}
            filters = ProcessFilters.model_validate(values)
            conditions = process_queries.conditions(filters)
            matching = await session.scalar(
                select(func.count()).select_from(select(Process.id).where(*conditions).subquery())
            )
            for sort in SORTS if label == "none" else (None, "-created_at"):
                first_params = PageParams(50, None, sort, False)
                first = process_queries.page_statement(filters, first_params)
                first_ms, first_median = await timed(first)
                deep_ms = deep_median = float("nan")
                deep = None
                if matching and matching > 100:
                    row = (
                        await session.execute(
                            deep_cursor_statement(conditions, sort, int(matching * 0.9))
                        )
                    ).one()
                    cursor = keyset._encode(keyset.order(sort), list(row))
                    deep_params = PageParams(50, cursor, sort, False)
                    deep = process_queries.page_statement(filters, deep_params)
                    deep_ms, deep_median = await timed(deep)
                ratio = deep_ms / first_ms if first_ms else float("nan")
                deep_text = (
                    f"{deep_ms:.2f} / {deep_median:.2f} | {ratio:.2f}"
                    if deep is not None
                    else "one page only | -"
                )
                lines.append(
                    f"| {label} | {sort or 'id'} | {matching:,} | {first_ms:.2f} / "
                    f"{first_median:.2f} | {deep_text} |"
                )
                print(lines[-1], flush=True)
                if sort in (None,) or label == "none":
                    text_plan = await plan(deep if deep is not None else first)
                    seq = [
                        line.strip()
                        for line in text_plan.splitlines()
                        if "Seq Scan on" in line
                        and any(
                            f" {table} " in f"{line} "
                            for table in ("processes", *(t for t in LINKS))
                        )
                    ]
                    flag = f" (sequential scan: {'; '.join(seq)})" if seq else ""
                    plans.append(
                        f"### {label}, sort {sort or 'id'}"
                        f"{', deep page' if deep is not None else ''}{flag}\n\n"
                        f"```\n{text_plan}\n```\n"
                    )
        lines.append("")
        lines.extend(plans)
    await engine.dispose()
    return "\n".join(lines)


# --- graph and impact -------------------------------------------------------------------

SEQUENTIAL_SCANS = ("processes", "process_dependencies", *LINKS)


def _percentiles(durations: list[float]) -> str:
    """`p50 / p90 / p99 / max` in milliseconds (nearest rank)."""
    ordered = sorted(durations)

    def rank(share: float) -> float:
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)]

    return f"{rank(0.5):.1f} | {rank(0.9):.1f} | {rank(0.99):.1f} | {ordered[-1]:.1f}"


def _sequential_scans(plan: str) -> list[str]:
    return [
        line.strip()
        for line in plan.splitlines()
        if "Seq Scan on" in line and any(f" {t} " in f"{line} " for t in SEQUENTIAL_SCANS)
    ]


async def measure_graph(repeat: int) -> str:
    """Latency of the impact and graph routes in-process, and their plans; markdown."""
    import inprocess
    from asgi_lifespan import LifespanManager
    from sqlalchemy import event, func, select, text

    from app.core.config import Settings
    from app.core.database import create_engine, create_sessionmaker
    from app.core.pagination import PageParams
    from app.domains.dependency import queries as dependency_queries
    from app.domains.dependency.schemas import Direction, ImpactFilters
    from app.domains.location.models import Location
    from app.domains.process.models import process_locations
    from app.main import create_app
    from app.seed import DEMO_ADMIN_EMAIL, demo_password

    server_url, redis_url = bench.resolve_servers()
    url = bench.with_database(server_url, DATABASE)
    engine = create_engine(Settings(database_url=url, db_statement_timeout_ms=0), url)
    captured: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _capture(*args: Any) -> None:
        captured.append((args[2], args[3]))

    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        site = await session.scalar(select(Location.id).where(Location.name == SITE))
        if site is None:
            raise SystemExit(f"million: no {SITE!r}; run `million.py dependencies` first")
        column = process_locations.c.location_id
        busiest = await session.scalar(
            select(column).group_by(column).order_by(func.count().desc()).limit(1)
        )
        after = await session.scalar(
            text("SELECT min(id) - 1 FROM processes WHERE description LIKE 'Generated %'")
        )
        count = await session.scalar(text("SELECT max(id) FROM processes")) - after
        edges = await session.scalar(text("SELECT count(*) FROM process_dependencies"))
        linked = {
            location: await session.scalar(
                select(func.count()).select_from(process_locations).where(column == location)
            )
            for location in (site, busiest)
        }
    # A spread of processes: every step of a chain, every kind of group position.
    roots = [after + 1 + (k * 19_997) % count for k in range(repeat)]

    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        redis_key_prefix=f"pa-million-{os.getpid()}:",
        rate_limit_default="1000000/second",
        rate_limit_auth="1000000/second",
        log_level="WARNING",
        auto_migrate=False,
    )
    lines = [
        f"# The atlas as a graph: {count + after:,} processes, {edges:,} dependencies\n",
        "Wall-clock time of each request through the whole application in-process (token "
        f"check, database, serialisation; no network), {repeat} requests per row, one at a "
        "time, after 5 of warm-up; milliseconds.\n",
        "| request | answer | p50 | p90 | p99 | max |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    async with LifespanManager(create_app(settings)) as manager:
        app = manager.app
        form = urlencode({"username": DEMO_ADMIN_EMAIL, "password": demo_password()})
        status, token = await inprocess.call(
            app,
            "POST",
            "/api/v1/auth/token",
            [(b"content-type", b"application/x-www-form-urlencoded")],
            form.encode(),
        )
        if status != 200:
            raise SystemExit(f"million: sign-in answered {status}: {token[:200]!r}")
        headers = [(b"authorization", f"Bearer {json.loads(token)['access_token']}".encode())]

        async def timed(paths: list[str]) -> tuple[list[float], list[Any]]:
            for path in paths[:5]:
                await inprocess.call(app, "GET", path, headers)
            durations, bodies = [], []
            for path in paths:
                started = time.perf_counter()
                status, body = await inprocess.call(app, "GET", path, headers)
                durations.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise SystemExit(f"million: {path} answered {status}: {body[:300]!r}")
                bodies.append(json.loads(body))
            return durations, bodies

        for label, location in ((f"{SITE} (1 %)", site), ("the most linked location", busiest)):
            path = f"/api/v1/impact?location_id={location}&limit=50"
            durations, bodies = await timed([path] * repeat)
            summary = bodies[0]["summary"]
            answer = (
                f"{linked[location]:,} linked, {summary['total']:,} affected "
                f"(deepest {len(summary['longest_chain']) - 1}), first page of 50"
            )
            lines.append(f"| impact, {label} | {answer} | {_percentiles(durations)} |")
            print(lines[-1], flush=True)
        for depth in (3, 10):
            for direction in ("downstream", "both"):
                paths = [
                    f"/api/v1/processes/{root}/graph?depth={depth}&direction={direction}"
                    for root in roots
                ]
                durations, bodies = await timed(paths)
                sizes = sorted(len(body["nodes"]) for body in bodies)
                answer = (
                    f"{repeat} processes: {sizes[len(sizes) // 2]} nodes (median), "
                    f"{sizes[-1]} at most"
                )
                lines.append(
                    f"| graph, {direction}, depth {depth} | {answer} | {_percentiles(durations)} |"
                )
                print(lines[-1], flush=True)

    async with sessionmaker() as session:

        async def plan(sql: str, parameters: Any) -> str:
            connection = await session.connection()
            result = await connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {sql}", parameters
            )
            return "\n".join(row[0] for row in result.all())

        async def plan_of(work: Any, marker: str = "") -> str:
            """The plan of the first statement `work` sends that contains `marker`."""
            captured.clear()
            await work
            sql, parameters = next((s, p) for s, p in captured if marker in s)
            return await plan(sql, parameters)

        plans = []
        page = PageParams(50, None, None, False)
        for label, location in ((SITE, site), ("the most linked location", busiest)):
            filters = ImpactFilters(location_id=location)
            work = dependency_queries.impact(session, filters=filters, page=page)
            plans.append((f"impact, {label}", await plan_of(work, "WITH RECURSIVE")))
        for depth in (3, 10):
            work = dependency_queries.graph(
                session, process_id=roots[0], direction=Direction.BOTH, depth=depth
            )
            plans.append((f"graph, both, depth {depth}", await plan_of(work, "WITH RECURSIVE")))
        plans.extend(await _overdue_plans(session, plan_of))
    lines.append("")
    for label, text_plan in plans:
        seq = _sequential_scans(text_plan)
        flag = f" (sequential scan: {'; '.join(seq)})" if seq else ""
        lines.append(f"### {label}{flag}\n\n```\n{text_plan}\n```\n")
    await engine.dispose()
    return "\n".join(lines)


async def _overdue_plans(session: Any, plan_of: Any) -> list[tuple[str, str]]:
    """The overdue filter's first page and a page 90 % of the way, if processes have reviews."""
    from sqlalchemy import func, select

    from app.core.pagination import PageParams
    from app.domains.process import queries as process_queries
    from app.domains.process.models import Process
    from app.domains.process.schemas import ProcessFilters

    keyset = getattr(process_queries, "overdue_keyset", None)
    if "review_overdue" not in ProcessFilters.model_fields or keyset is None:
        print("million: processes have no review dates here: no overdue plans")
        return []
    filters = ProcessFilters(review_overdue=True)
    conditions = process_queries.conditions(filters)
    matching = await session.scalar(
        select(func.count()).select_from(select(Process.id).where(*conditions).subquery())
    )
    plans = [
        (
            f"overdue, first page ({matching:,} overdue)",
            process_queries.page_statement(filters, PageParams(50, None, None, False)),
        )
    ]
    if matching:
        order = keyset.order(process_queries.OVERDUE_DEFAULT_SORT)
        columns = [item.column for item in order]
        ordering = [c.desc() if i.descending else c for c, i in zip(columns, order, strict=True)]
        deep = select(*columns).where(*conditions).order_by(*ordering)
        row = (await session.execute(deep.offset(int(matching * 0.9)).limit(1))).one()
        cursor = keyset._encode(order, list(row))
        deep_page = process_queries.page_statement(filters, PageParams(50, cursor, None, False))
        plans.append(("overdue, a page 90 % of the way", deep_page))
    return [(label, await plan_of(session.execute(statement))) for label, statement in plans]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate_cmd = commands.add_parser("generate")
    generate_cmd.add_argument("--processes", type=int, default=1_000_000)
    explain_cmd = commands.add_parser("explain")
    explain_cmd.add_argument("--out", type=Path)
    explain_cmd.add_argument("--repeat", type=int, default=15)
    commands.add_parser("dependencies")
    graph_cmd = commands.add_parser("graph")
    graph_cmd.add_argument("--out", type=Path)
    graph_cmd.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.processes)
    elif args.command == "dependencies":
        remake_dependencies()
    elif args.command == "graph":
        report = asyncio.run(measure_graph(args.repeat))
        if args.out:
            args.out.write_text(report)
            print(f"million: graph figures and plans in {args.out}")
        else:
            print(report)
    else:
        report = asyncio.run(explain(args.repeat))
        if args.out:
            args.out.write_text(report)
            print(f"million: plans in {args.out}")
        else:
            print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
