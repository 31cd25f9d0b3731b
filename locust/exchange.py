"""Export of a million processes and import of ten thousand: rows/s, first byte, worker RSS.

    .venv/bin/python locust/exchange.py export [--database atlas_million]
    .venv/bin/python locust/exchange.py import [--rows 10000]
    .venv/bin/python locust/exchange.py all [--out exchange.md]

`export` serves `atlas_million` (made by `million.py generate` when it is missing) with one
uvicorn worker and downloads `GET /processes/export` as CSV and NDJSON, for the whole
million and for a filter that selects a tenth of it (`status=retired`, about 100,000
rows): rows per second, the time to the first byte and to the first row, and the worker's
RSS before and at its peak (sampled every 50 ms), so that RSS can be compared between the
two sizes.

`import` makes a fresh database with the demo organisation, reads the ids and names the
file will name from the API's own exports, and posts 10,000 processes with an owner (by
email) and two links of each kind (departments and locations by id, resources by id,
roles by name) as CSV and as NDJSON: a dry run, then the real import, each timed
from the request to the answer. The database is dropped afterwards.
"""

# This script starts the app with fixed arguments and calls 127.0.0.1 only.
# ruff: noqa: S310

from __future__ import annotations

import argparse
import csv
import http.client
import io
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench
import million

READ_SIZE = 1 << 20
CASES = {"the whole million": {}, "status=retired (a tenth)": {"status": "retired"}}


class PeakRss(threading.Thread):
    """The server's workers' largest RSS (MiB) while it runs, sampled every 50 ms."""

    def __init__(self, server: bench.Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.peak = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for worker in self.server.workers():
                try:
                    self.peak = max(self.peak, worker.memory_info().rss / 2**20)
                except bench.psutil.Error:
                    continue
            self.halt.wait(0.05)

    def stop(self) -> float:
        self.halt.set()
        self.join()
        return self.peak


def rss(server: bench.Server) -> float:
    return max(worker.memory_info().rss / 2**20 for worker in server.workers())


def backends(database_url: str) -> list[int]:
    """The PostgreSQL backends serving `database_url`'s database (the server's pool)."""
    import asyncio

    import asyncpg

    from app.core.database import async_url

    target = async_url(database_url)

    async def pids() -> list[int]:
        connection = await asyncpg.connect(
            user=target.username,
            password=target.password,
            host=target.query.get("host") or target.host,
            port=target.port,
            database=target.database,
        )
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                target.database,
            )
            return [row["pid"] for row in rows]
        finally:
            await connection.close()

    return asyncio.run(pids())


def cpu_seconds(server: bench.Server, pids: list[int]) -> tuple[float, float]:
    """CPU time used so far by the server's workers, and by the PostgreSQL backends `pids`."""
    workers = sum(sum(worker.cpu_times()[:2]) for worker in server.workers())
    postgres = 0.0
    for pid in pids:
        try:
            postgres += sum(bench.psutil.Process(pid).cpu_times()[:2])
        except bench.psutil.Error:
            continue
    return workers, postgres


def environment(database_url: str, redis_url: str) -> dict[str, str]:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"pa-exchange-{stamp}:",
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_DEFAULT": "1000000/second",
        "RATE_LIMIT_AUTH": "1000000/second",
        "METRICS_ENABLED": "false",
        "ACCESS_TOKEN_MINUTES": "60",
    }


@contextmanager
def serving(database_url: str, redis_url: str, log: Path) -> Iterator[tuple[bench.Server, str]]:
    env = environment(database_url, redis_url)
    with bench.running(bench.atlas_server("uvicorn", 1, env, log)) as server:
        password = os.environ.get("DEMO_PASSWORD") or "atlas-demo-password"
        try:
            yield server, bench.sign_in(server, password)
        finally:
            bench.clear_redis(redis_url, env["REDIS_KEY_PREFIX"])


def download(
    server: bench.Server, token: str, params: dict[str, str], database_url: str = ""
) -> dict[str, float]:
    """One export, read as fast as the client can: its timings, rows and bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    path = "/api/v1/processes/export?" + urllib.parse.urlencode(params)
    sampler = PeakRss(server)
    before = rss(server)
    pids = backends(database_url) if database_url else []
    cpu_before = cpu_seconds(server, pids)
    sampler.start()
    started = time.perf_counter()
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:500]!r}")
    first_byte = first_row = 0.0
    lines = size = 0
    skip = 1 if params.get("format") == "csv" else 0
    while True:
        chunk = response.read1(READ_SIZE)
        if not chunk:
            break
        now = time.perf_counter()
        first_byte = first_byte or now
        size += len(chunk)
        lines += chunk.count(b"\n")
        if not first_row and lines > skip:
            first_row = now
    elapsed = time.perf_counter() - started
    peak = sampler.stop()
    cpu_after = cpu_seconds(server, pids)
    connection.close()
    rows = lines - skip
    return {
        "rows": rows,
        "seconds": elapsed,
        "rows_per_second": rows / elapsed,
        "mib": size / 2**20,
        "first_byte_ms": (first_byte - started) * 1000,
        "first_row_ms": (first_row - started) * 1000,
        "rss_before": before,
        "rss_peak": peak,
        "worker_cpu": cpu_after[0] - cpu_before[0],
        "postgres_cpu": cpu_after[1] - cpu_before[1],
    }


def export_benchmark(database: str, log: Path, repeat: int) -> list[str]:
    server_url, redis_url = bench.resolve_servers()
    url = bench.with_database(server_url, database)
    if not exists(server_url, database):
        print(f"exchange: {database} is missing; generating it (several minutes)")
        million.generate(1_000_000)
    lines = [
        "| rows | format | rows/s | seconds | MiB | first byte | first row "
        "| worker RSS before → peak | CPU s: worker, PostgreSQL |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    with serving(url, redis_url, log) as (server, token):
        download(server, token, {"format": "csv", "status": "draft"})  # warm the caches
        for label, filters in CASES.items():
            for file_format in ("csv", "ndjson"):
                runs = [
                    download(server, token, {**filters, "format": file_format}, url)
                    for _ in range(repeat)
                ]
                best = max(runs, key=lambda run: run["rows_per_second"])
                peak = max(run["rss_peak"] for run in runs)
                line = (
                    f"| {int(best['rows']):,} ({label}) | {file_format} | "
                    f"{best['rows_per_second']:,.0f} | {best['seconds']:.1f} | "
                    f"{best['mib']:.0f} | {best['first_byte_ms']:.0f} ms | "
                    f"{best['first_row_ms']:.0f} ms | "
                    f"{best['rss_before']:.1f} → {peak:.1f} MiB | "
                    f"{best['worker_cpu']:.1f}, {best['postgres_cpu']:.1f} |"
                )
                print(line, flush=True)
                lines.append(line)
    return lines


def exists(server_url: str, database: str) -> bool:
    import asyncio

    import asyncpg

    from app.core.database import async_url

    async def check() -> bool:
        target = async_url(server_url)
        connection = await asyncpg.connect(
            user=target.username,
            password=target.password,
            host=target.query.get("host") or target.host,
            port=target.port,
            database="postgres",
        )
        try:
            found = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", database
            )
            return bool(found)
        finally:
            await connection.close()

    return asyncio.run(check())


# --- import -------------------------------------------------------------------------------


def api_rows(server: bench.Server, token: str, collection: str) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{server.url}/api/v1/{collection}/export?format=ndjson",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def process_rows(server: bench.Server, token: str, count: int, tag: str) -> list[dict[str, Any]]:
    """`count` new processes, each with an owner and two links of every kind."""
    chosen = random.Random(count)  # the same file every run
    departments = [row["id"] for row in api_rows(server, token, "departments")]
    locations = [row["id"] for row in api_rows(server, token, "locations")]
    resources = [row["id"] for row in api_rows(server, token, "resources")]
    roles = [row["name"] for row in api_rows(server, token, "roles")]
    owners = [row["email"] for row in api_rows(server, token, "users") if row["is_active"]]
    return [
        {
            "title": f"Imported process {tag} {n}",
            "description": f"Process {n}, loaded from the benchmark's file.",
            "status": chosen.choice(["draft", "active", "retired"]),
            "criticality": chosen.choice(["low", "medium", "high", "critical"]),
            "owner_email": chosen.choice(owners),
            "departments": [{"id": i} for i in chosen.sample(departments, 2)],
            "locations": [{"id": i} for i in chosen.sample(locations, 2)],
            "resources": [{"id": i} for i in chosen.sample(resources, 2)],
            "roles": [{"name": name} for name in chosen.sample(roles, 2)],
        }
        for n in range(count)
    ]


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(
        [
            "title",
            "description",
            "status",
            "criticality",
            "owner_email",
            "department_ids",
            "location_ids",
            "resource_ids",
            "role_names",
        ]
    )
    for row in rows:
        writer.writerow(
            [
                row["title"],
                row["description"],
                row["status"],
                row["criticality"],
                row["owner_email"],
                *(
                    ";".join(str(x["id"]) for x in row[kind])
                    for kind in ("departments", "locations", "resources")
                ),
                ";".join(x["name"] for x in row["roles"]),
            ]
        )
    return text.getvalue().encode()


def as_ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def post_import(
    server: bench.Server, token: str, body: bytes, media_type: str, *, dry_run: bool
) -> tuple[float, dict[str, Any], float]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    path = "/api/v1/processes/import" + ("?dry_run=true" if dry_run else "")
    sampler = PeakRss(server)
    sampler.start()
    started = time.perf_counter()
    connection.request(
        "POST",
        path,
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": media_type},
    )
    response = connection.getresponse()
    report = json.loads(response.read())
    elapsed = time.perf_counter() - started
    peak = sampler.stop()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"import answered {response.status}: {str(report)[:500]}")
    return elapsed, report, peak


def import_benchmark(rows: int, log: Path) -> list[str]:
    url, redis_url, made = bench.database_for(None, "atlas_import")
    lines = [
        "| file | rows | dry run: seconds, rows/s | import: seconds, rows/s | created "
        "| worker RSS peak |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    try:
        with serving(url, redis_url, log) as (server, token):
            for label, media_type, encode in (
                ("CSV", "text/csv", as_csv),
                ("NDJSON", "application/x-ndjson", as_ndjson),
            ):
                body = encode(process_rows(server, token, rows, label))
                checked, report, _ = post_import(server, token, body, media_type, dry_run=True)
                if report["errors"] or report["created"] != rows:
                    raise RuntimeError(f"the dry run did not pass: {str(report)[:500]}")
                written, report, peak = post_import(server, token, body, media_type, dry_run=False)
                line = (
                    f"| {label}, {len(body) / 2**20:.1f} MiB | {rows:,} | "
                    f"{checked:.2f} s, {rows / checked:,.0f} | "
                    f"{written:.2f} s, {rows / written:,.0f} | "
                    f"{report['created']:,} | {peak:.1f} MiB |"
                )
                print(line, flush=True)
                lines.append(line)
    finally:
        if made:
            bench.drop(url)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["export", "import", "all"])
    parser.add_argument("--database", default=million.DATABASE)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = datetime.now(UTC)
    log = bench.ROOT / "bench-results" / f"exchange-{started:%Y%m%d-%H%M%S}.log"
    log.parent.mkdir(exist_ok=True)
    load = os.getloadavg()[0]
    report = [f"exchange benchmark, {started:%Y-%m-%d %H:%M} UTC, load {load:.2f}", ""]
    if args.command in ("export", "all"):
        report += [*export_benchmark(args.database, log, args.repeat), ""]
    if args.command in ("import", "all"):
        report += import_benchmark(args.rows, log)
    text = "\n".join(report) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
