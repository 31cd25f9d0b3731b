"""One million processes: bulk generation, and EXPLAIN ANALYZE of every list the API runs.

    .venv/bin/python locust/million.py generate [--processes 1000000]
    .venv/bin/python locust/million.py explain  [--out docs-ready markdown file]

`generate` makes a separate database (`atlas_million`, or BENCH_MILLION_DATABASE),
migrates it, seeds the demo organisation and adds the processes in bulk with
`INSERT ... SELECT generate_series` (never one request at a time): two links of each
kind per process, statuses, criticalities, owners and creation dates spread like the
demo's, then ANALYZE.

`explain` builds the statements exactly as the API does (`process_queries` filters,
`Keyset.apply` with a real cursor) and, for each, times the first page against a page deep
in the keyset order (a cursor 90 % of the way through) and prints the plan, flagging any
sequential scan of processes or a link table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench

DATABASE = os.environ.get("BENCH_MILLION_DATABASE", "atlas_million")

GENERATE = [
    "SET synchronous_commit = off",
    "SET maintenance_work_mem = '512MB'",
    """
    INSERT INTO processes (title, description, status, criticality, owner_id, created_by_id,
                           created_at, updated_at)
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
           created + (g % 30) * interval '1 day'
    FROM generate_series(1, {count}) AS g,
         (SELECT array_agg(id ORDER BY id) AS users FROM users) AS u,
         LATERAL (SELECT now() - interval '720 days' * (g::float / {count})
                         - (g % 997) * interval '1 second' AS created) AS c,
         (SELECT ARRAY['Approve', 'Audit', 'Book', 'Calibrate', 'Dispatch', 'Handle',
                       'Onboard', 'Plan', 'Publish', 'Reconcile', 'Release', 'Review']
                 AS verb,
                 ARRAY['supplier', 'invoice', 'shipment', 'contract', 'laptop', 'payroll',
                       'campaign', 'incident', 'work order', 'budget', 'badge', 'report']
                 AS noun) AS words
    """,
]

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
            for statement in GENERATE:
                started = time.monotonic()
                await connection.execute(text(statement.format(count=int(count))))
                print(f"million: {statement.split()[0]} ... {time.monotonic() - started:.0f}s")
            for table, (column, target, step) in LINKS.items():
                started = time.monotonic()
                sql = LINK_INSERT.format(table=table, column=column, target=target, step=step)
                await connection.execute(text(sql), {"after": after})
                print(f"million: {table} in {time.monotonic() - started:.0f}s")
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
            total = (await connection.execute(text("SELECT count(*) FROM processes"))).scalar()
        print(f"million: {total} processes in {DATABASE}")
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
            conditions = process_queries._conditions(filters)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate_cmd = commands.add_parser("generate")
    generate_cmd.add_argument("--processes", type=int, default=1_000_000)
    explain_cmd = commands.add_parser("explain")
    explain_cmd.add_argument("--out", type=Path)
    explain_cmd.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.processes)
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
