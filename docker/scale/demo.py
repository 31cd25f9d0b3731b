"""Scale-out demo: two instances (2 workers each) behind HAProxy, through PgBouncer, on one machine.

    python docker/scale/demo.py [--seconds 8] [--connections 32] [--report PATH]

It installs HAProxy and PgBouncer from Debian's packages when they are missing (as root),
starts PgBouncer in transaction pooling mode in front of the local PostgreSQL, two
`python -m app serve --workers 2` instances sharing it and the local Redis, and HAProxy
health-checking them on /api/v1/ready, then proves through the balancer that nothing lives
in one process only: tokens, logouts, rate limits, writes, metrics and graceful shutdown.
Everything it starts is stopped, and its database and Redis keys are removed, at the end.
Exit status 0 when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_EMAIL = "scale-admin@example.com"
ADMIN_PASSWORD = "scale demo passphrase"  # noqa: S105 (a throwaway demo account)
AUTH_LIMIT = 30  # per hour: refill during the demo is negligible, so the count is exact


@dataclass
class Demo:
    work: Path
    database: str
    prefix: str
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    results: list[tuple[str, bool, str]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.results.append((name, passed, detail))
        print(f"[{'PASS' if passed else 'FAIL'}] {name}: {detail}", flush=True)

    @property
    def balancer(self) -> str:
        return f"http://127.0.0.1:{self.ports['balancer']}"

    def instance(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


# --- tools and processes --------------------------------------------------------------


def ensure_tools() -> None:
    missing = [tool for tool in ("haproxy", "pgbouncer") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"error: install {' '.join(missing)} (Debian packages) or run as root")
    print(f"installing {' '.join(missing)} from Debian's packages", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    # Debian may start the packaged services; ours run on their own ports and configs.
    for service in missing:
        subprocess.run(["service", service, "stop"], capture_output=True, check=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {seconds} s")


def as_postgres_user() -> list[str]:
    # PgBouncer refuses to run as root; Debian's `postgres` account is there with PostgreSQL.
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def start_pgbouncer(demo: Demo) -> None:
    home = demo.work / "pgbouncer"
    home.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")  # it writes its log and pid file here
    config = home / "pgbouncer.ini"
    (home / "users.txt").write_text('"postgres" ""\n')
    config.write_text(
        f"""[databases]
atlas = host={POSTGRES["host"]} port={POSTGRES["port"]} dbname={demo.database} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {demo.ports["pgbouncer"]}
unix_socket_dir =
auth_type = trust
auth_file = {home / "users.txt"}
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = {home / "pgbouncer.log"}
pidfile = {home / "pgbouncer.pid"}
"""
    )
    demo.processes["pgbouncer"] = subprocess.Popen(
        [*as_postgres_user(), "pgbouncer", "--quiet", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection(("127.0.0.1", demo.ports["pgbouncer"])):
            return
        time.sleep(0.1)
    raise RuntimeError(f"pgbouncer did not start; see {home / 'pgbouncer.log'}")


def start_instance(demo: Demo, name: str) -> None:
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{demo.ports['pgbouncer']}/atlas",
        "DB_PGBOUNCER": "true",
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": demo.prefix,
        "SECRET_KEY": "scale-demo-secret-shared-by-every-instance-0123456789",
        "AUTO_MIGRATE": "false",
        "WORKERS": "2",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_DEFAULT": "1000000/minute",
        "RATE_LIMIT_AUTH": f"{AUTH_LIMIT}/hour",
        "GRACEFUL_SHUTDOWN_SECONDS": "10",
        "PROMETHEUS_MULTIPROC_DIR": str(demo.work / f"metrics-{name}"),
        "FIRST_SUPERUSER_EMAIL": ADMIN_EMAIL,
        "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
    }
    log = (demo.work / f"{name}.log").open("wb")
    demo.processes[name] = subprocess.Popen(
        [PYTHON, "-m", "app", "serve", "--port", str(demo.ports[name]), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def start_haproxy(demo: Demo) -> None:
    def backend(name: str, servers: list[str]) -> str:
        lines = "\n".join(
            f"    server {server} 127.0.0.1:{demo.ports[server]} check" for server in servers
        )
        return f"""
backend {name}
    balance roundrobin
    option httpchk GET /api/v1/ready
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1
    # A request handed to an instance that is shutting down is retried on the other one.
    retry-on conn-failure empty-response response-timeout
    retries 3
    option redispatch 1
    http-response set-header X-Served-By %s
{lines}
"""

    config = demo.work / "haproxy.cfg"
    config.write_text(
        f"""global
    maxconn 2048

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive

frontend both
    bind 127.0.0.1:{demo.ports["balancer"]}
    default_backend both_instances

frontend one
    bind 127.0.0.1:{demo.ports["balancer_one"]}
    default_backend one_instance
{backend("both_instances", ["a", "b"])}
{backend("one_instance", ["a"])}
"""
    )
    subprocess.run(["haproxy", "-c", "-q", "-f", str(config)], check=True)
    demo.processes["haproxy"] = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdout=(demo.work / "haproxy.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


# --- database -------------------------------------------------------------------------


async def create_database(name: str) -> None:
    connection = await asyncpg.connect(database="postgres", **POSTGRES)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
        # Through PgBouncer session settings cannot travel in the startup packet: set them here.
        await connection.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '5s'")
        await connection.execute(f'ALTER DATABASE "{name}" SET max_parallel_workers_per_gather = 0')
    finally:
        await connection.close()


async def drop_database(name: str) -> None:
    connection = await asyncpg.connect(database="postgres", **POSTGRES)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def migrate(database: str) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{POSTGRES['port']}/{database}"
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    subprocess.run([PYTHON, "-m", "app", "migrate"], cwd=ROOT, env=env, check=True)


async def clear_redis(prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


# --- the checks -----------------------------------------------------------------------


def login(client: httpx.Client) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def served_by(
    client: httpx.Client, path: str, headers: dict[str, str], times: int
) -> Counter[tuple[str, int]]:
    """(instance, status) of `times` requests through the balancer."""
    seen: Counter[tuple[str, int]] = Counter()
    for _ in range(times):
        response = client.get(path, headers=headers)
        seen[(response.headers.get("x-served-by", "?"), response.status_code)] += 1
    return seen


def check_tokens(demo: Demo, client: httpx.Client) -> dict[str, str]:
    headers = login(client)
    seen = served_by(client, "/api/v1/users/me", headers, 8)
    instances = {instance for instance, _ in seen}
    demo.check(
        "a token issued through one instance works on the other",
        instances == {"a", "b"} and all(status == 200 for _, status in seen),
        f"{dict(seen)}",
    )
    doomed = login(client)
    logout = client.post("/api/v1/auth/logout", headers=doomed)
    after = served_by(client, "/api/v1/users/me", doomed, 8)
    demo.check(
        "logout through one instance is refused at once on the other",
        logout.status_code == 204
        and {instance for instance, _ in after} == {"a", "b"}
        and all(status == 401 for _, status in after),
        f"logout {logout.status_code} by {logout.headers.get('x-served-by')}, then {dict(after)}",
    )
    return headers


def check_rate_limit(demo: Demo, client: httpx.Client) -> None:
    # Three requests of this client's bucket were spent already: the two logins and the
    # logout. /auth/* is keyed by address even when a bearer token comes along.
    statuses: Counter[int] = Counter()
    by_instance: Counter[str] = Counter()
    for _ in range(AUTH_LIMIT + 10):
        response = client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token"})
        statuses[response.status_code] += 1
        if response.status_code != 429:
            by_instance[response.headers.get("x-served-by", "?")] += 1
    allowed = sum(count for status, count in statuses.items() if status != 429)
    demo.check(
        "the rate limit is shared across instances",
        allowed + 3 == AUTH_LIMIT and len(by_instance) == 2,
        f"{allowed} allowed + 2 earlier logins and a logout = {allowed + 3} of {AUTH_LIMIT}/hour, "
        f"served by {dict(by_instance)}, answers {dict(statuses)}",
    )


def check_write_then_read(demo: Demo, headers: dict[str, str]) -> None:
    with (
        httpx.Client(base_url=demo.instance("a"), headers=headers) as a,
        httpx.Client(base_url=demo.instance("b"), headers=headers) as b,
    ):
        created = a.post("/api/v1/processes", json={"title": "Written through A"})
        path = created.headers["location"]
        patched = a.patch(
            path, json={"status": "active"}, headers={"If-Match": created.headers["etag"]}
        )
        read = b.get(path)
        demo.check(
            "a write through one instance reads back through the other with the new ETag",
            patched.status_code == 200
            and read.status_code == 200
            and read.headers["etag"] == patched.headers["etag"] == 'W/"2"'
            and read.json()["status"] == "active",
            f"PATCH on A -> {patched.headers.get('etag')}, GET on B -> {read.headers.get('etag')}",
        )


def scrape(url: str, route: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "http_requests":
            for sample in family.samples:
                if sample.name == "http_requests_total" and sample.labels.get("route") == route:
                    total += sample.value
    return total


def check_metrics(demo: Demo, client: httpx.Client, headers: dict[str, str]) -> None:
    route = "/api/v1/permissions"
    before = {name: scrape(demo.instance(name), route) for name in ("a", "b")}
    seen = served_by(client, route, headers, 40)
    after = {name: scrape(demo.instance(name), route) for name in ("a", "b")}
    counted = {name: after[name] - before[name] for name in after}
    expected = {name: sum(n for (inst, _), n in seen.items() if inst == name) for name in after}
    demo.check(
        "each instance's /metrics counts its own requests; the sum is the balancer's total",
        counted == expected and sum(counted.values()) == 40,
        f"scraped {counted}, balancer handed {expected}",
    )


async def load(
    url: str, path: str, headers: dict[str, str], seconds: float, connections: int
) -> dict[str, Any]:
    """Closed-loop load: `connections` clients each sending requests back to back."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    statuses[response.status_code] += 1
                except httpx.HTTPError:
                    statuses[0] += 1
                latencies.append(time.perf_counter() - started)

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.monotonic() - began
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "statuses": dict(statuses),
    }


def measure(demo: Demo, headers: dict[str, str], seconds: float, connections: int) -> None:
    with httpx.Client(base_url=demo.balancer, headers=headers) as client:
        path = client.post("/api/v1/processes", json={"title": "Measured"}).headers["location"]
    for label, port in (("one instance", "balancer_one"), ("two instances", "balancer")):
        url = f"http://127.0.0.1:{demo.ports[port]}"
        result = asyncio.run(load(url, path, headers, seconds, connections))
        result["topology"] = label
        demo.measurements.append(result)
        print(
            f"  {label}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms, {result['statuses']}",
            flush=True,
        )
    demo.check(
        "load through the balancer is served without errors, one and two instances",
        all(set(m["statuses"]) == {200} for m in demo.measurements),
        "; ".join(f"{m['topology']}: {m['statuses']}" for m in demo.measurements),
    )


def check_graceful_shutdown(demo: Demo, headers: dict[str, str], connections: int) -> None:
    with httpx.Client(base_url=demo.balancer, headers=headers) as client:
        path = client.post("/api/v1/processes", json={"title": "Shutdown"}).headers["location"]

    async def run() -> dict[str, Any]:
        task = asyncio.create_task(load(demo.balancer, path, headers, 6.0, connections))
        await asyncio.sleep(2.0)
        demo.processes["b"].send_signal(signal.SIGTERM)
        return await task

    result = asyncio.run(run())
    code = demo.processes["b"].wait(30)
    failures = sum(n for status, n in result["statuses"].items() if status != 200)
    demo.check(
        "SIGTERM to one instance mid-load loses no request",
        failures == 0 and code in (0, -signal.SIGTERM),
        f"{result['requests']} requests, answers {result['statuses']}, instance B exited {code}",
    )


# --- the run --------------------------------------------------------------------------


@contextmanager
def environment(args: argparse.Namespace) -> Iterator[Demo]:
    work = Path(tempfile.mkdtemp(prefix="pa-scale-"))
    work.chmod(0o755)  # PgBouncer runs as `postgres` and reads its config here
    tag = uuid.uuid4().hex[:8]
    names = ("pgbouncer", "a", "b", "balancer", "balancer_one")
    demo = Demo(work, f"pa_scale_{tag}", f"pa-scale-{tag}:", {name: free_port() for name in names})
    asyncio.run(create_database(demo.database))
    try:
        yield demo
    finally:
        for name in ("haproxy", "a", "b", "pgbouncer"):
            if name in demo.processes:
                stop(demo.processes[name])
        asyncio.run(drop_database(demo.database))
        asyncio.run(clear_redis(demo.prefix))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def report(demo: Demo, path: Path | None) -> str:
    lines = ["# Scale-out demo", "", "| check | result | detail |", "| --- | --- | --- |"]
    lines += [
        f"| {name} | {'pass' if ok else 'FAIL'} | {detail} |" for name, ok, detail in demo.results
    ]
    lines += [
        "",
        "| topology | requests/s | p50 ms | p99 ms | answers |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {m['topology']} | {m['rps']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} "
        f"| {m['statuses']} |"
        for m in demo.measurements
    ]
    text = "\n".join(lines) + "\n"
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="load per topology")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--report", type=Path, default=ROOT / "bench-results" / "scale-demo.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, configs)")
    args = parser.parse_args()
    ensure_tools()
    with environment(args) as demo:
        migrate(demo.database)
        start_pgbouncer(demo)
        for name in ("a", "b"):
            start_instance(demo, name)
        for name in ("a", "b"):
            wait_for(f"{demo.instance(name)}/api/v1/ready")
        start_haproxy(demo)
        wait_for(f"{demo.balancer}/api/v1/ready")
        time.sleep(1.5)  # both servers through their first health checks
        with httpx.Client(base_url=demo.balancer, timeout=10) as client:
            headers = check_tokens(demo, client)
            check_rate_limit(demo, client)
            check_write_then_read(demo, headers)
            check_metrics(demo, client, headers)
        measure(demo, headers, args.seconds, args.connections)
        check_graceful_shutdown(demo, headers, args.connections)
        print(report(demo, args.report))
        return 0 if all(ok for _, ok, _ in demo.results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
