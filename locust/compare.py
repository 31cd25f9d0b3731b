"""A/B comparison of server variants on one endpoint with wrk, in alternating rounds.

    .venv/bin/python locust/compare.py --rounds 3 --duration 10s --workers 1 \\
        --variant base \\
        --variant no-pre-ping DB_POOL_PRE_PING=false \\
        --variant two-trips EXPERIMENTS=two-redis-round-trips \\
        --variant minimal SERVER=reference

Each `--variant NAME [SETTING=VALUE ...]` is served in turn (settings go to the server's
environment; `SERVER=uvicorn|granian|reference` and `WORKERS=N` choose the server), and
rounds alternate the variants so that a noisy neighbour hurts them all alike. Per
variant: requests/s and latency (median of rounds), the CPU time each request cost the
server's workers (steadier than requests/s on a shared machine), and how many connections
the pool opened per 1,000 requests (PostgreSQL's `pg_stat_database.sessions`). Uses a
fresh seeded database unless --database NAME names an existing one. Needs wrk.
"""

# This script starts local tools with fixed arguments.
# ruff: noqa: S603

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench

TARGETS = {
    "get-by-id": "/api/v1/processes/",
    "list": "/api/v1/processes?limit=50&sort=-created_at&x=",
    "list-100": "/api/v1/processes?limit=100&x=",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variant", nargs="+", action="append", required=True, metavar="NAME [SETTING=VALUE]"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=bench.parse_duration, default="10s")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--target", choices=sorted(TARGETS), default="get-by-id")
    parser.add_argument("--database", help="an existing seeded database (default: a fresh one)")
    parser.add_argument("--out", type=Path, default=bench.ROOT / "bench-results")
    return parser


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _backends(database: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            title = " ".join(process.info["cmdline"] or ())
            if (process.info["name"] or "").startswith("postgres") and f" {database} " in title:
                found.append(process)
        except psutil.Error:
            continue
    return found


def _sessions(database_url: str) -> int:
    """Connections ever opened to the database (PostgreSQL's own counter)."""
    import asyncio

    import asyncpg

    from app.core.database import async_url

    url = async_url(database_url)

    async def read() -> int:
        connection = await asyncpg.connect(
            user=url.username, host=url.host, port=url.port, database=url.database
        )
        try:
            value: int = await connection.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
            return value - 1  # this one
        finally:
            await connection.close()

    return asyncio.run(read())


def measure(
    server: bench.Server, target: str, token: str | None, ids: list[int], args: Any, label: str
) -> dict[str, Any]:
    headers = f'["Authorization"] = "Bearer {token}"' if token else ""
    prefix = target if server.name != "reference app" else "/processes/"
    script = args.out_dir / f"{label}.lua"
    paths = ",".join(f'"{prefix}{process_id}"' for process_id in ids)
    script.write_text(bench.WRK_SCRIPT % {"paths": paths, "headers": headers})
    base = ["wrk", "-t2", f"-c{args.connections}", "--latency", "-s", str(script)]
    subprocess.run([*base, "-d2s", server.url], capture_output=True, check=False)  # warm-up
    workers = server.workers()
    backends = _backends(args.database_name)
    sessions_before = _sessions(args.database_url)
    cpu_before, pg_before = _cpu_seconds(workers), _cpu_seconds(backends)
    completed = subprocess.run(
        [*base, f"-d{args.duration}s", server.url],
        capture_output=True,
        text=True,
        check=False,
        timeout=args.duration + 60,
    )
    backends = _backends(args.database_name) or backends
    cpu = _cpu_seconds(workers) - cpu_before
    sessions = _sessions(args.database_url) - sessions_before
    pg = _cpu_seconds(backends) - pg_before
    match = re.search(r"^RESULT (\{.*\})$", completed.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no result: {completed.stdout[-300:]}")
    import json

    raw = json.loads(match[1])
    requests = max(1, raw["requests"])
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50": raw["p50_us"] / 1000,
        "p99": raw["p99_us"] / 1000,
        "errors": raw["errors"] + raw["status_errors"],
        "cpu_us": cpu / requests * 1e6,
        "pg_us": pg / requests * 1e6,
        "connects": sessions / requests * 1000,
    }


def make_server(settings: dict[str, str], args: Any, env: dict[str, str], log: Path) -> Any:
    kind = settings.pop("SERVER", "uvicorn")
    workers = int(settings.pop("WORKERS", args.workers))
    if kind == "reference":
        return bench.reference_server(workers, env["DATABASE_URL"], log)
    # uvicorn serves variants:create_app, so EXPERIMENTS may undo hot-path changes.
    return bench.atlas_server(
        "granian" if kind == "granian" else "variants", workers, {**env, **settings}, log
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print("compare: wrk is not installed (Debian: apt-get install wrk)")
        return 2
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    args.out_dir = args.out / f"compare-{started}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    server_url, redis_url = bench.resolve_servers()
    password = os.environ.get("DEMO_PASSWORD") or "atlas-demo-password"
    metrics_dir = Path(tempfile.mkdtemp(prefix="atlas-compare-metrics-"))
    prefix = f"pa-compare-{started}:"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DEMO_PASSWORD": password,
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
        "REDIS_KEY_PREFIX": prefix,
        "RATE_LIMIT_DEFAULT": "1000000/second",
        "RATE_LIMIT_AUTH": "1000000/second",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    fresh = args.database is None
    args.database_name = args.database or f"atlas_compare_{started.replace('-', '_')}"
    if fresh:
        database_url, _ = bench.prepare_database(server_url, args.database_name, env)
    else:
        database_url = bench.with_database(server_url, args.database_name)
    env["DATABASE_URL"] = database_url
    args.database_url = database_url
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for round_number in range(1, args.rounds + 1):
            for name, *pairs in args.variant:
                settings = dict(pair.split("=", 1) for pair in pairs)
                server = make_server(dict(settings), args, env, args.out_dir / "server.log")
                with bench.running(server):
                    token = None
                    ids = list(range(1, 501))
                    if server.name != "reference app":
                        token = bench.sign_in(server, password)
                        ids = bench.process_ids(server, token)
                    result = measure(server, TARGETS[args.target], token, ids, args, name)
                results.setdefault(name, []).append(result)
                print(
                    f"round {round_number} {name}: {result['rps']:.0f} req/s, p50 "
                    f"{result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, server "
                    f"{result['cpu_us']:.0f} us/req, PostgreSQL {result['pg_us']:.0f} us/req, "
                    f"{result['connects']:.1f} connects/1000 req, errors {result['errors']}",
                    flush=True,
                )
                time.sleep(1)
    finally:
        if fresh:
            bench.drop(database_url)
        bench.clear_redis(redis_url, prefix)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    first = args.variant[0][0]
    base_rps = statistics.median(r["rps"] for r in results[first])
    base_cpu = statistics.median(r["cpu_us"] for r in results[first])
    lines = [
        f"{args.target}, {args.workers} worker(s), wrk {args.connections} connections, "
        f"{args.rounds} rounds of {args.duration}s (medians; ratios against {first})",
        "",
        "| variant | req/s | x | p50 ms | p99 ms | server CPU us/req | x | "
        "connections opened per 1,000 req | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        lines.append(
            f"| {name} | {rps:,.0f} | {rps / base_rps:.2f} | "
            f"{statistics.median(r['p50'] for r in runs):.1f} | "
            f"{statistics.median(r['p99'] for r in runs):.1f} | {cpu:,.0f} | "
            f"{cpu / base_cpu:.2f} | {statistics.median(r['connects'] for r in runs):.1f} | "
            f"{sum(r['errors'] for r in runs)} |"
        )
    table = "\n".join(lines)
    (args.out_dir / "compare.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
