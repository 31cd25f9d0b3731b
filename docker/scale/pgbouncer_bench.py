"""The list page directly and through PgBouncer, with and without prepared statements.

    make pgbouncer
    BENCH_MILLION_DATABASE=atlas_million .venv/bin/python locust/million.py generate
    .venv/bin/python docker/scale/pgbouncer_bench.py --database atlas_million [--rounds 10]

Two measures on a database that `locust/million.py generate` made (the demo organisation
and its admin, plus the generated processes):

1. PostgreSQL's own time for the statements of one `GET /api/v1/processes?limit=100`,
   captured as the app sends them: `EXPLAIN (ANALYZE)` planning and execution, run as a
   fresh statement each time (what `DB_PGBOUNCER=true` alone does) and as an SQL-level
   prepared statement executed again and again (what a statement cache does).
2. The page end to end through the app in-process (ASGI calls, no HTTP server), one request
   at a time, in alternating rounds of four configurations: direct; PgBouncer without
   `max_prepared_statements` (`DB_PGBOUNCER=true`); PgBouncer with it and the setting off;
   PgBouncer with it and `DB_PGBOUNCER_PREPARED_STATEMENTS=true`. Per request: wall time,
   this process's CPU, the CPU of the database's PostgreSQL backends and of PgBouncer,
   read from /proc (psutil) before and after each round, so a noisy machine shifts wall
   times but hardly the CPU figures. Each configuration has one connection (app pool 1,
   PgBouncer pool 1), so every request of a round runs on the same backend.

Each PgBouncer is started as the tests start theirs (`tests/reliability/servers.py`): on a
spare loopback port from a temporary directory, stopped at the end, and as root under an
unprivileged account. The database gets `max_parallel_workers_per_gather
= 0` (what the direct engine sets at connect) for the run, and it is reset afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import psutil
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "locust"))

import bench  # noqa: E402  (locust/bench.py: server resolution)
from inprocess import call  # noqa: E402  (locust/inprocess.py: one raw ASGI request)

from tests.reliability.servers import PgBouncer, running_pgbouncer  # noqa: E402

PAGE = "/api/v1/processes?limit=100"
BUILT = ROOT / ".data" / "pgbouncer" / "bin" / "pgbouncer"
REDIS_PREFIX = f"pa-pgbouncer-bench-{os.getpid()}:"  # deleted at the end


# --- PgBouncer ----------------------------------------------------------------------------


@contextmanager
def pgbouncer(upstream_url: str, max_prepared_statements: int) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of `upstream_url`, with one server connection."""
    binary = str(BUILT) if BUILT.exists() else shutil.which("pgbouncer")
    if binary is None:
        raise SystemExit("no pgbouncer: run `make pgbouncer`")
    with running_pgbouncer(
        binary, upstream_url, max_prepared_statements=max_prepared_statements, server_connections=1
    ) as bouncer:
        yield bouncer


# --- 1. PostgreSQL's time per statement ---------------------------------------------------


def _timings(plan: Any) -> tuple[float, float]:
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]
    return float(top["Planning Time"]), float(top["Execution Time"])


async def explain(url: str, captured: list[tuple[str, Any]], repeat: int) -> list[str]:
    """Median planning and execution (ms) of each statement, fresh and prepared."""
    target = make_url(url)
    connection = await asyncpg.connect(
        host=str(target.query.get("host") or target.host),
        port=target.port,
        user=target.username,
        database=target.database,
        statement_cache_size=0,
        server_settings={"max_parallel_workers_per_gather": "0"},
    )
    lines = [
        "| statement | fresh: planning | fresh: execution | prepared: planning | "
        "prepared: execution |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    try:
        for number, (sql, parameters) in enumerate(captured):
            args = list(parameters or ())
            fresh = [
                _timings(await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args))
                for _ in range(repeat)
            ]
            types = (await connection.prepare(sql)).get_parameters()
            kinds = [
                await connection.fetchval("SELECT format_type($1, NULL)", kind.oid)
                for kind in types
            ]
            signature = ", ".join(kinds)
            await connection.execute(f"PREPARE bench_{number}({signature}) AS {sql}")
            # EXECUTE inside EXPLAIN takes no bound parameters: pass the values as literals.
            literals = [
                f"{await connection.fetchval(f'SELECT quote_nullable($1::{kind}::text)', arg)}"
                f"::{kind}"
                for kind, arg in zip(kinds, args, strict=True)
            ] if args else []  # fmt: skip
            execute = (
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE bench_{number}({', '.join(literals)})"
            )
            # The first 5 executions plan for their parameters; then PostgreSQL may keep a
            # generic plan. Measure after those, as a long-lived connection sees it.
            prepared = [_timings(await connection.fetchval(execute)) for _ in range(repeat + 5)][5:]
            name = " ".join(sql.split()[:8])[:60]
            lines.append(
                f"| `{name}...` | {statistics.median(p for p, _ in fresh):.2f} ms | "
                f"{statistics.median(e for _, e in fresh):.2f} ms | "
                f"{statistics.median(p for p, _ in prepared):.2f} ms | "
                f"{statistics.median(e for _, e in prepared):.2f} ms |"
            )
    finally:
        await connection.close()
    return lines


# --- 2. the page end to end ---------------------------------------------------------------


@dataclass
class Config:
    name: str
    settings: dict[str, Any]
    bouncer: PgBouncer | None = None
    app: Any = None
    wall: list[float] = field(default_factory=list)
    app_cpu: list[float] = field(default_factory=list)
    postgres_cpu: list[float] = field(default_factory=list)
    bouncer_cpu: list[float] = field(default_factory=list)


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def _backends(monitor: asyncpg.Connection, database: str) -> list[int]:
    rows = await monitor.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return [row["pid"] for row in rows]


async def _round(config: Config, headers: list[tuple[bytes, bytes]], requests: int,
                 monitor: asyncpg.Connection, database: str) -> None:  # fmt: skip
    pids = await _backends(monitor, database)
    bouncer_pids = [config.bouncer.process.pid] if config.bouncer else []
    postgres_before, bouncer_before = _cpu(pids), _cpu(bouncer_pids)
    cpu_before = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        status, body = await call(config.app, "GET", PAGE, headers)
        config.wall.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"{config.name}: {PAGE} answered {status}: {body[:300]!r}")
    config.app_cpu.append((time.process_time() - cpu_before) / requests * 1000)
    config.postgres_cpu.append((_cpu(pids) - postgres_before) / requests * 1000)
    config.bouncer_cpu.append((_cpu(bouncer_pids) - bouncer_before) / requests * 1000)


async def end_to_end(url: str, redis_url: str, rounds: int, requests: int) -> list[str]:
    from asgi_lifespan import LifespanManager

    from app.core.config import Settings
    from app.main import create_app
    from app.seed import DEMO_ADMIN_EMAIL, demo_password

    database = str(make_url(url).database)
    common = {
        "redis_url": redis_url,
        "redis_key_prefix": REDIS_PREFIX,
        "rate_limit_default": "1000000/second",
        "rate_limit_auth": "1000000/second",
        "log_level": "WARNING",
        "auto_migrate": False,
        "db_pool_size": 1,
        "db_max_overflow": 0,
    }
    with (
        pgbouncer(url, 0) as plain,
        pgbouncer(url, 200) as tracking,
        pgbouncer(url, 200) as preparing,
    ):
        configs = [
            Config("direct (statement cache on)", {"database_url": url}),
            Config(
                "PgBouncer, max_prepared_statements=0, DB_PGBOUNCER=true",
                {"database_url": plain.url("atlas"), "db_pgbouncer": True},
                plain,
            ),
            Config(
                "PgBouncer, max_prepared_statements=200, DB_PGBOUNCER=true",
                {"database_url": tracking.url("atlas"), "db_pgbouncer": True},
                tracking,
            ),
            Config(
                "PgBouncer, max_prepared_statements=200, + DB_PGBOUNCER_PREPARED_STATEMENTS",
                {
                    "database_url": preparing.url("atlas"),
                    "db_pgbouncer": True,
                    "db_pgbouncer_prepared_statements": True,
                },
                preparing,
            ),
        ]
        target = make_url(url)
        monitor = await asyncpg.connect(
            host=str(target.query.get("host") or target.host), port=target.port,
            user=target.username, database="postgres",
        )  # fmt: skip
        async with AsyncExitStack() as stack:
            for config in configs:
                settings = Settings(_env_file=None, **common, **config.settings)  # type: ignore[call-arg]
                manager = await stack.enter_async_context(LifespanManager(create_app(settings)))
                config.app = manager.app
            form = urlencode({"username": DEMO_ADMIN_EMAIL, "password": demo_password()})
            status, token = await call(
                configs[0].app, "POST", "/api/v1/auth/token",
                [(b"content-type", b"application/x-www-form-urlencoded")], form.encode(),
            )  # fmt: skip
            if status != 200:
                raise SystemExit(f"sign-in answered {status}: {token[:200]!r}")
            headers = [(b"authorization", f"Bearer {json.loads(token)['access_token']}".encode())]
            for config in configs:  # warm-up: connections, statement caches, generic plans
                for _ in range(20):
                    await call(config.app, "GET", PAGE, headers)
                config.wall.clear()
            for _ in range(rounds):
                for config in configs:
                    await _round(config, headers, requests, monitor, database)
        await monitor.close()
    lines = [
        f"{rounds} alternating rounds of {requests} requests, one at a time; medians of the "
        "rounds (wall: median and p90 of every request)",
        "",
        "| configuration | wall median | wall p90 | app CPU | PostgreSQL CPU | PgBouncer CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for config in configs:
        ordered = sorted(config.wall)
        lines.append(
            f"| {config.name} | {statistics.median(ordered):.2f} ms | "
            f"{ordered[int(0.9 * (len(ordered) - 1))]:.2f} ms | "
            f"{statistics.median(config.app_cpu):.2f} ms | "
            f"{statistics.median(config.postgres_cpu):.2f} ms | "
            f"{statistics.median(config.bouncer_cpu):.2f} ms |"
        )
    return lines


async def capture(url: str, redis_url: str) -> list[tuple[str, Any]]:
    """The statements (SQL, parameters) of one page request, as the app sends them."""
    from asgi_lifespan import LifespanManager

    from app.core.config import Settings
    from app.main import create_app
    from app.seed import DEMO_ADMIN_EMAIL, demo_password

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, redis_url=redis_url, redis_key_prefix=REDIS_PREFIX,
        log_level="WARNING",
        auto_migrate=False, rate_limit_default="1000000/second",
        rate_limit_auth="1000000/second",
    )  # fmt: skip
    async with LifespanManager(create_app(settings)) as manager:
        form = urlencode({"username": DEMO_ADMIN_EMAIL, "password": demo_password()})
        _, token = await call(
            manager.app, "POST", "/api/v1/auth/token",
            [(b"content-type", b"application/x-www-form-urlencoded")], form.encode(),
        )  # fmt: skip
        headers = [(b"authorization", f"Bearer {json.loads(token)['access_token']}".encode())]
        captured: list[tuple[str, Any]] = []

        def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            captured.append((statement, parameters))

        event.listen(Engine, "before_cursor_execute", record)
        try:
            status, _ = await call(manager.app, "GET", PAGE, headers)
        finally:
            event.remove(Engine, "before_cursor_execute", record)
        if status != 200:
            raise SystemExit(f"{PAGE} answered {status}")
    return captured


async def main_async(args: argparse.Namespace) -> str:
    server_url, redis_url = bench.resolve_servers()
    url = bench.with_database(server_url, args.database)
    target = make_url(url)
    admin = await asyncpg.connect(
        host=str(target.query.get("host") or target.host), port=target.port,
        user=target.username, database=target.database,
    )  # fmt: skip
    processes = await admin.fetchval("SELECT count(*) FROM processes")
    # Through PgBouncer no setting travels at connect: set on the database what the direct
    # engine sends (docs/scaling.md), so all four run the same plans.
    await admin.execute(f'ALTER DATABASE "{args.database}" SET max_parallel_workers_per_gather = 0')
    try:
        captured = await capture(url, redis_url)
        report = [
            f"Database `{args.database}`: {processes:,} processes; `GET {PAGE}`",
            "",
            f"PostgreSQL's time per statement (EXPLAIN ANALYZE, median of {args.repeat}):",
            "",
            *await explain(url, captured, args.repeat),
            "",
            *await end_to_end(url, redis_url, args.rounds, args.requests),
        ]
    finally:
        await admin.execute(
            f'ALTER DATABASE "{args.database}" RESET max_parallel_workers_per_gather'
        )
        await admin.close()
        bench.clear_redis(redis_url, REDIS_PREFIX)
    return "\n".join(report)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database", default=os.environ.get("BENCH_MILLION_DATABASE", "atlas_million")
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50, help="requests per round")
    parser.add_argument("--repeat", type=int, default=20, help="EXPLAIN runs per statement")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
