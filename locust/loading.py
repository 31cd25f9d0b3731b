"""selectinload against the one aggregating statement, for one process and for a page.

    .venv/bin/python locust/loading.py [--database NAME] [--reads 300]

Both paths end in the API's `ProcessRead` models. "selectinload" maps the owner, author
and four link collections as relationships (view-only, for this script alone) and loads
them the way an ORM-first service would: `selectinload` for each collection, `joinedload`
for the two people. "one statement" is the API's own `queries.read` and `queries.list`
(`json_agg` subqueries). Reports wall time and this process's CPU time per call, and
statements per call. Makes a fresh seeded database unless --database names one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench


async def run(database: str, reads: int) -> str:
    from sqlalchemy import event, select
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import joinedload, relationship, selectinload

    from app.core.config import Settings
    from app.core.database import create_engine, create_sessionmaker
    from app.core.pagination import PageParams
    from app.domains.process import queries as process_queries
    from app.domains.process.models import Process
    from app.domains.process.queries import LINKS
    from app.domains.process.schemas import ProcessFilters, ProcessRead
    from app.domains.user.models import User

    mapper = Process.__mapper__
    names = [link.name for link in LINKS.values()]
    for link in LINKS.values():
        target = link.target
        mapper.add_property(
            f"bench_{link.name}",
            relationship(
                target, secondary=link.table, viewonly=True, lazy="raise", order_by=target.id
            ),
        )
    for name, column in (("owner", Process.owner_id), ("created_by", Process.created_by_id)):
        mapper.add_property(
            f"bench_{name}",
            relationship(User, foreign_keys=[column], viewonly=True, lazy="raise"),
        )
    options = [
        *(selectinload(getattr(Process, f"bench_{name}")) for name in names),
        joinedload(Process.bench_owner),  # type: ignore[attr-defined]
        joinedload(Process.bench_created_by),  # type: ignore[attr-defined]
    ]

    def as_read(process: Any) -> ProcessRead:
        def person(user: Any) -> dict[str, Any] | None:
            return None if user is None else {"id": user.id, "full_name": user.full_name}

        return ProcessRead.model_validate(
            {
                "id": process.id,
                "title": process.title,
                "description": process.description,
                "status": process.status,
                "criticality": process.criticality,
                "owner": person(process.bench_owner),
                **{
                    name: [{"id": t.id, "name": t.name} for t in getattr(process, f"bench_{name}")]
                    for name in names
                },
                "created_at": process.created_at,
                "updated_at": process.updated_at,
                "created_by": person(process.bench_created_by),
                "version": process.version,
            }
        )

    server_url, _ = bench.resolve_servers()
    url = bench.with_database(server_url, database)
    engine = create_engine(Settings(database_url=url), url)
    statements = 0

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        ids = list(await session.scalars(select(Process.id)))
    random.seed(42)
    sample = [random.choice(ids) for _ in range(reads)]

    async def one_selectin(session: AsyncSession, process_id: int) -> None:
        process = (
            (
                await session.scalars(
                    select(Process).where(Process.id == process_id).options(*options)
                )
            )
            .unique()
            .one()
        )
        as_read(process)

    async def one_statement(session: AsyncSession, process_id: int) -> None:
        await process_queries.read(session, process_id)

    async def page_selectin(session: AsyncSession, _: int) -> None:
        rows = (
            (
                await session.scalars(
                    select(Process).order_by(Process.id).limit(101).options(*options)
                )
            )
            .unique()
            .all()
        )
        [as_read(process) for process in rows[:100]]

    async def page_statement(session: AsyncSession, _: int) -> None:
        await process_queries.list(
            session, filters=ProcessFilters(), page=PageParams(100, None, None, False)
        )

    async def measure(
        call: Callable[[AsyncSession, int], Awaitable[None]], count: int
    ) -> tuple[float, float, float]:
        nonlocal statements
        async with sessionmaker() as session:
            for process_id in sample[:10]:  # warm caches and prepared statements
                await call(session, process_id)
            statements = 0
            walls, cpus = [], []
            for process_id in sample[:count]:
                wall, cpu = time.perf_counter(), time.process_time()
                await call(session, process_id)
                walls.append((time.perf_counter() - wall) * 1e6)
                cpus.append((time.process_time() - cpu) * 1e6)
                session.expunge_all()
            return statistics.median(walls), statistics.mean(cpus), statements / count

    lines = [
        f"{reads} calls each on `{database}` (median wall time, mean CPU time of this process)",
        "",
        "| what | loading | statements per call | wall us | CPU us |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for label, calls, count in (
        ("one process", (("selectinload", one_selectin), ("one statement", one_statement)), reads),
        ("page of 100", (("selectinload", page_selectin), ("one statement", page_statement)), 50),
    ):
        for name, call in calls:
            wall, cpu, per_call = await measure(call, count)
            lines.append(f"| {label} | {name} | {per_call:.0f} | {wall:,.0f} | {cpu:,.0f} |")
            print(lines[-1], flush=True)
    await engine.dispose()
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="an existing seeded database (default: a fresh one)")
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    database = args.database
    if database is None:
        import os

        server_url, redis_url = bench.resolve_servers()
        database = f"atlas_loading_{int(time.time())}"
        url, _ = bench.prepare_database(
            server_url, database, {**os.environ, "REDIS_URL": redis_url}
        )
    try:
        print(asyncio.run(run(database, args.reads)))
    finally:
        if args.database is None:
            bench.drop(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
