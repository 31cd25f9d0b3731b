"""`make bench`: fresh database, demo data, the server with N workers, locust, wrk, a report.

    .venv/bin/python locust/bench.py [--workers 2] [--users 100] [--duration 60s]
                                     [--scenario mix reference ...] [--server uvicorn|granian]

Each run creates a database of its own (dropped afterwards unless --keep-database),
migrates it with `python -m app migrate`, seeds the demo organisation, starts
`python -m app serve` and runs the chosen scenarios against 127.0.0.1 only, each bounded
in time. It writes `bench-results/<timestamp>/summary.md` (requests/s, p50/p95/p99 per
endpoint, failures, server CPU and RSS per worker, the issue's targets met or not),
`results.json` and locust's CSVs. docs/benchmarks.md explains the scenarios and numbers.

`raw-mix` runs Atlas next to the raw-limit fixture (`reference_app.py`), N workers each,
and measures the reference mix, GET by id and the list of 100 on both in alternating
rounds (`--rounds`, `--round-duration`): the summary's "Ratios against the raw-limit
fixture".

PostgreSQL: BENCH_DATABASE_URL (a server URL; default 127.0.0.1:5432 as postgres, else the
embedded server). Redis: BENCH_REDIS_URL (default 127.0.0.1:6379, else embedded).
wrk is optional: without it the GET-by-id comparison is skipped with a message, and
raw-mix measures its single GETs with locust.
"""

# This script starts local tools with fixed arguments and calls 127.0.0.1 only.
# ruff: noqa: S603, S310

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LOCUST_DIR = ROOT / "locust"
BIN = Path(sys.executable).parent
PYTHON = sys.executable
DEMO_ADMIN = "admin@demo.process-atlas.test"
SCENARIOS = (
    "mix",
    "reference",
    "reference-nothink",
    "get-by-id",
    "login-storm",
    "raw-mix",
    "soak",
)
DEFAULT_SCENARIOS = tuple(name for name in SCENARIOS if name != "soak")

# What the issue measured for the reference project on this kind of machine.
REFERENCE_NOTHINK_RPS = 14.5
REFERENCE_THINK_RPS = 11.0
TARGET_P99_MS = 50.0
# The realistic mix: AtlasUser with this many users, p99 <= TARGET_P99_MS.
TARGET_MIX_USERS = 300
# Atlas must reach at least this share of the raw-limit fixture's req/s (raw-mix).
TARGET_RAW_RATIO = 0.5
SIGN_INS_PER_SECOND = 3.0
# How long a `when_ready` locust run may wait for its users' sign-ins (ATLAS_READY_TIMEOUT).
READY_TIMEOUT_SECONDS = 120


def parse_duration(text: str) -> int:
    """'60s', '5m', '90' -> seconds."""
    match = re.fullmatch(r"(\d+)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 60s, 5m)")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="server workers (default 2)")
    parser.add_argument("--users", type=int, default=100, help="locust users for the mixes")
    parser.add_argument(
        "--nothink-users", type=int, default=32, help="users of reference-nothink (default 32)"
    )
    parser.add_argument(
        "--duration", type=parse_duration, default="60s", help="per locust scenario (60s)"
    )
    parser.add_argument(
        "--soak-duration", type=parse_duration, default="5m", help="the soak scenario (5m)"
    )
    parser.add_argument(
        "--wrk-duration", type=parse_duration, default="20s", help="per wrk run (20s)"
    )
    parser.add_argument("--wrk-connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=3, help="raw-mix: alternating rounds per side (3)"
    )
    parser.add_argument(
        "--round-duration",
        type=parse_duration,
        default="20s",
        help="raw-mix: one round of one side (20s)",
    )
    parser.add_argument(
        "--scenario",
        nargs="+",
        choices=(*SCENARIOS, "all"),
        default=list(DEFAULT_SCENARIOS),
        help=f"default: {' '.join(DEFAULT_SCENARIOS)}; 'all' adds soak",
    )
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="RATE_LIMIT_ENABLED=false (default: on, with limits no test reaches)",
    )
    parser.add_argument(
        "--access-token-minutes",
        type=int,
        default=1,
        help="access token lifetime, short so runs exercise refresh (default 1)",
    )
    parser.add_argument(
        "--experiments",
        default="",
        help="comma-separated experiments of locust/variants.py to apply to the server",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra server setting, repeatable (e.g. --env DB_POOL_SIZE=20)",
    )
    return parser


# --- services -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def resolve_servers() -> tuple[str, str]:
    """PostgreSQL server URL and Redis URL: configured, local, or embedded."""
    from app.core.embedded import local_or_embedded_postgres, local_or_embedded_redis

    data_dir = ROOT / ".data" / "bench"
    database = os.environ.get("BENCH_DATABASE_URL") or local_or_embedded_postgres(data_dir)
    redis = os.environ.get("BENCH_REDIS_URL") or local_or_embedded_redis(data_dir)
    return database, redis


def with_database(url: str, name: str) -> str:
    from app.core.database import async_url

    return async_url(url).set(database=name).render_as_string(hide_password=False)


def prepare_database(server_url: str, name: str, env: dict[str, str]) -> tuple[str, Any]:
    """Create, migrate and seed a fresh database; its URL and the seed report."""
    from app.core.database import create_database_if_missing

    url = with_database(server_url, name)
    asyncio.run(create_database_if_missing(url))
    subprocess.run(
        [PYTHON, "-m", "app", "migrate"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return url, asyncio.run(seed(url, env))


def database_for(existing: str | None, prefix: str) -> tuple[str, str, bool]:
    """A seeded database: `existing`, or a fresh one named after `prefix`.

    Returns its URL, the Redis URL and whether it was made here (then the caller drops it).
    """
    server_url, redis_url = resolve_servers()
    if existing:
        return with_database(server_url, existing), redis_url, False
    name = f"{prefix}_{int(time.time())}"
    url, _ = prepare_database(server_url, name, {**os.environ, "REDIS_URL": redis_url})
    return url, redis_url, True


async def seed(url: str, env: dict[str, str]) -> Any:
    from redis.asyncio import Redis

    from app.core.config import Settings
    from app.core.database import create_engine, create_sessionmaker
    from app.domains.auth.context import AuthContext
    from app.seed import seed_demo

    settings = Settings(database_url=url, redis_url=env["REDIS_URL"])
    engine = create_engine(settings)
    redis = Redis.from_url(env["REDIS_URL"])
    try:
        return await seed_demo(create_sessionmaker(engine), AuthContext.build(settings, redis))
    finally:
        await redis.aclose()
        await engine.dispose()


def drop(url: str) -> None:
    from app.core.database import drop_database

    asyncio.run(drop_database(url))


def clear_redis(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


# --- servers under test ---------------------------------------------------------------


@dataclass
class Server:
    """A server process group: ours (`python -m app serve`), granian, or the reference app."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    health: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + self.health, timeout=2) as response:
                    if response.status == 200 and len(self.workers()) >= self.expected:
                        time.sleep(1)  # let every worker finish its start-up
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health} in {timeout}s")

    expected = 1

    def workers(self) -> list[psutil.Process]:
        """The processes serving requests: the children, or the server itself alone."""
        if self.process is None:
            return []
        try:
            parent = psutil.Process(self.process.pid)
            children = [
                child
                for child in parent.children(recursive=True)
                if "resource_tracker" not in " ".join(child.cmdline())
            ]
        except psutil.Error:
            return []
        return children or [parent]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def uvicorn_command(app: str, port: int, workers: int, *, factory: bool = False) -> list[str]:
    """uvicorn serving `app` from locust/ the way `python -m app serve` serves ours."""
    return [
        PYTHON,
        "-m",
        "uvicorn",
        app,
        *(["--factory"] if factory else []),
        "--app-dir",
        str(LOCUST_DIR),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--no-server-header",
        "--no-proxy-headers",
        "--log-level",
        "warning",
    ]


def atlas_server(kind: str, workers: int, env: dict[str, str], log: Path) -> Server:
    """Our app under `kind`: `uvicorn` (`python -m app serve`), `granian`, or `variants`.

    `variants` (also chosen when EXPERIMENTS is set) is locust/variants.py's app, with
    the hot-path changes named in EXPERIMENTS undone, served by uvicorn like `serve`.
    """
    port = free_port()
    if kind == "granian":
        command = [
            str(BIN / "granian"),
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--no-ws",
            "app.main:create_configured_app",
        ]
    elif kind == "variants" or env.get("EXPERIMENTS"):
        command = uvicorn_command("variants:create_app", port, workers, factory=True)
    else:
        command = [PYTHON, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)]
    server = Server(f"process-atlas ({kind})", command, env, port, "/api/v1/health", log)
    server.expected = workers
    return server


def reference_server(workers: int, database_url: str, log: Path) -> Server:
    port = free_port()
    command = uvicorn_command("reference_app:app", port, workers)
    env = {**os.environ, "DATABASE_URL": database_url}
    server = Server("reference app", command, env, port, "/catalogue", log)
    server.expected = workers
    return server


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- resource sampling ----------------------------------------------------------------


@dataclass
class Usage:
    """CPU (percent of one core) and RSS (MiB) per worker, PostgreSQL and the load tool."""

    workers: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    postgres_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)

    def summary(self, window: slice = slice(1, None)) -> dict[str, Any]:
        """Means over the samples of `window` (by default all but the first: no CPU yet)."""
        per_worker = []
        for pid, samples in self.workers.items():
            busy = [cpu for cpu, _ in samples[window]] or [0.0]
            per_worker.append(
                {
                    "pid": pid,
                    "cpu_mean": round(sum(busy) / len(busy), 1),
                    "cpu_max": round(max(busy), 1),
                    "rss_start_mib": round(samples[0][1], 1),
                    "rss_end_mib": round(samples[-1][1], 1),
                    "rss_max_mib": round(max(rss for _, rss in samples), 1),
                }
            )
        return {
            "workers": per_worker,
            "postgres_cpu_mean": _mean(self.postgres_cpu[window]),
            "client_cpu_mean": _mean(self.client_cpu[window]),
        }


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 1) if values else 0.0


class Sampler(threading.Thread):
    """Samples the server's workers, PostgreSQL and the load generator once a second."""

    def __init__(self, server: Server, client_name: str) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.client_name = client_name
        self.usage = Usage()
        self.halt = threading.Event()
        self._known: dict[int, psutil.Process] = {}

    def _cpu(self, process: psutil.Process) -> float:
        known = self._known.setdefault(process.pid, process)
        return float(known.cpu_percent(None))

    def run(self) -> None:
        while not self.halt.is_set():
            for worker in self.server.workers():
                try:
                    sample = (self._cpu(worker), worker.memory_info().rss / 2**20)
                except psutil.Error:
                    continue
                self.usage.workers.setdefault(worker.pid, []).append(sample)
            postgres = client = 0.0
            for process in psutil.process_iter(["name", "cmdline"]):
                try:
                    name = process.info["name"] or ""
                    if name.startswith("postgres"):
                        postgres += self._cpu(process)
                    elif self.client_name in " ".join(process.info["cmdline"] or ()):
                        client += self._cpu(process)
                except psutil.Error:
                    continue
            self.usage.postgres_cpu.append(postgres)
            self.usage.client_cpu.append(client)
            self.halt.wait(1.0)

    def stop(self) -> Usage:
        self.halt.set()
        self.join()
        return self.usage


@contextmanager
def sampling(server: Server, client_name: str) -> Iterator[Sampler]:
    sampler = Sampler(server, client_name)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


# --- progress -------------------------------------------------------------------------

PROGRESS_EVERY_SECONDS = 15.0


def clock(seconds: float) -> str:
    """95 -> '1:35'."""
    whole = max(0, round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


class Progress:
    """Prints each scenario's name, elapsed time and time left while the bench runs."""

    def __init__(self, planned_seconds: float) -> None:
        self.started = time.monotonic()
        self.not_started = planned_seconds

    @contextmanager
    def scenario(self, name: str, seconds: float) -> Iterator[None]:
        """Report on `name`, planned to take `seconds`, every PROGRESS_EVERY_SECONDS."""
        self.not_started = max(0.0, self.not_started - seconds)
        begun = time.monotonic()
        halt = threading.Event()

        def report() -> None:
            while not halt.wait(PROGRESS_EVERY_SECONDS):
                self.print(name, time.monotonic() - begun, seconds)

        self.print(name, 0.0, seconds)
        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            yield
        finally:
            halt.set()
            reporter.join()
            print(f"bench: {name}: done in {clock(time.monotonic() - begun)}", flush=True)

    def print(self, name: str, elapsed: float, seconds: float) -> None:
        left = max(0.0, seconds - elapsed)
        print(
            f"bench: {name}: {clock(elapsed)} elapsed, {clock(left)} left; the bench: "
            f"{clock(time.monotonic() - self.started)} elapsed, about "
            f"{clock(left + self.not_started)} left",
            flush=True,
        )


# --- locust ---------------------------------------------------------------------------


@dataclass
class LocustRun:
    name: str
    classes: list[str]
    users: int
    duration: int
    description: str
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # Users per second; default: SIGN_INS_PER_SECOND (each user signs in with argon2).
    spawn: float | None = None
    # Measure `duration` from the moment every user is ready (signed in), not from the end
    # of the ramp: locust stops itself then (ATLAS_MEASURE_SECONDS; raw-mix rounds).
    when_ready: bool = False
    stats: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    # `usage` of the last `duration` seconds only (the measured window of `when_ready`).
    steady: dict[str, Any] = field(default_factory=dict)
    # locust's warning when the users were not all signed in as `when_ready` began measuring.
    not_ready: str = ""


def spawn_rate(run: LocustRun) -> float:
    """Users per second: each signs in once (argon2); a burst of sign-ins is login-storm's."""
    return min(float(run.users), run.spawn or SIGN_INS_PER_SECOND)


def ramp_seconds(run: LocustRun) -> int:
    return int(run.users / spawn_rate(run)) + 1


def run_locust(run: LocustRun, server: Server, out: Path) -> LocustRun:
    prefix = out / run.name
    # Statistics restart once every user has arrived (--reset-stats), and the run lasts
    # `duration` after that.
    ramp = ramp_seconds(run)
    command = [
        str(BIN / "locust"),
        "-f",
        str(LOCUST_DIR / "locustfile.py"),
        *run.extra,  # before the class names: --config-users takes every word after it
        "--headless",
        "--host",
        server.url,
        "--users",
        str(run.users),
        "--spawn-rate",
        str(spawn_rate(run)),
        "--run-time",
        f"{run.duration + ramp + (READY_TIMEOUT_SECONDS if run.when_ready else 0)}s",
        "--stop-timeout",
        "5",
        "--reset-stats",
        "--only-summary",
        "--csv",
        str(prefix),
        "--loglevel",
        "WARNING",
        *run.classes,
    ]
    measure = (
        {
            "ATLAS_MEASURE_SECONDS": str(run.duration),
            "ATLAS_READY_TIMEOUT": str(READY_TIMEOUT_SECONDS),
        }
        if run.when_ready
        else {}
    )
    print(f"bench: {run.name}: {run.users} users of {', '.join(run.classes)} for {run.duration}s")
    with (
        sampling(server, "locustfile.py") as sampler,
        (out / f"{run.name}.log").open("wb") as log,
    ):
        subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, **run.env, **measure},
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=run.duration + ramp + READY_TIMEOUT_SECONDS + 180,
            check=False,  # locust exits 1 when a request failed; the report says which
        )
    run.usage = sampler.usage.summary()
    run.not_ready = not_ready(out / f"{run.name}.log")
    # The last sample may follow locust's exit; the `duration` before it are the window.
    run.steady = sampler.usage.summary(slice(-run.duration - 1, -1))
    run.stats = read_stats(Path(f"{prefix}_stats.csv"))
    return run


def not_ready(log: Path) -> str:
    """The locustfile's warning that some users had not signed in when measuring began."""
    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.search(r"\d+ of \d+ users ready when the measurement began[^\n]*", text)
    return found[0].strip() if found else ""


def read_stats(path: Path) -> list[dict[str, Any]]:
    import csv

    if not path.exists():
        return []
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    stats = []
    for row in rows:
        if row["Name"].startswith("[setup]"):
            continue
        stats.append(
            {
                "method": row["Type"],
                "name": row["Name"],
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50": _ms(row["50%"]),
                "p95": _ms(row["95%"]),
                "p99": _ms(row["99%"]),
                "max": _ms(row["Max Response Time"]),
            }
        )
    return stats


def _ms(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")


def aggregated(run: LocustRun) -> dict[str, Any]:
    for row in run.stats:
        if row["name"] == "Aggregated":
            return row
    return {"requests": 0, "failures": 0, "rps": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0}


def endpoint(run: LocustRun, name: str) -> dict[str, Any]:
    for row in run.stats:
        if row["name"] == name:
            return row
    return aggregated(run)


# --- wrk ------------------------------------------------------------------------------

WRK_WARM_UP_SECONDS = 3
# wrk's default (2 s) counts a slow page of 100 on a busy machine as an error, not a latency.
WRK_TIMEOUT = "10s"

WRK_SCRIPT = """
local paths = {%(paths)s}
local headers = {%(headers)s}
math.randomseed(42)
request = function()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"errors\\": %%d, " ..
    "\\"status_errors\\": %%d, \\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d, " ..
    "\\"max_us\\": %%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


def sign_in(server: Server, password: str) -> str:
    body = urllib.parse.urlencode({"username": DEMO_ADMIN, "password": password}).encode()
    request = urllib.request.Request(server.url + "/api/v1/auth/token", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.load(response)["access_token"]
        return token


def process_ids(server: Server, token: str) -> list[int]:
    request = urllib.request.Request(
        server.url + "/api/v1/processes?limit=200", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [item["id"] for item in json.load(response)["items"]]


def run_wrk(
    server: Server,
    label: str,
    paths: list[str],
    token: str | None,
    args: Any,
    duration: int | None = None,
) -> dict[str, Any]:
    """wrk GETting `paths` at random (after a warm-up) for `duration` (--wrk-duration)."""
    seconds = duration or args.wrk_duration
    headers = f'["Authorization"] = "Bearer {token}"' if token else ""
    script = args.out_dir / f"wrk-{label}.lua"
    quoted = ",".join(f'"{path}"' for path in paths)
    script.write_text(WRK_SCRIPT % {"paths": quoted, "headers": headers})
    base = ["wrk", "-t2", f"-c{args.wrk_connections}", "--latency", "--timeout", WRK_TIMEOUT]
    base += ["-s", str(script)]
    warm_up = [*base, f"-d{WRK_WARM_UP_SECONDS}s", server.url]
    subprocess.run(warm_up, capture_output=True, check=False)
    with sampling(server, "wrk ") as sampler:
        completed = subprocess.run(
            [*base, f"-d{seconds}s", server.url],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
        )
    (args.out_dir / f"wrk-{label}.txt").write_text(completed.stdout + completed.stderr)
    match = re.search(r"^RESULT (\{.*\})$", completed.stdout, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no result for {label}: {completed.stderr[-500:]}")
    raw = json.loads(match[1])
    return {
        "label": label,
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["status_errors"],
        "p50": raw["p50_us"] / 1000,
        "p90": raw["p90_us"] / 1000,
        "p99": raw["p99_us"] / 1000,
        "max": raw["max_us"] / 1000,
        "usage": sampler.usage.summary(),
    }


# --- the report -----------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def usage_lines(usage: dict[str, Any]) -> list[str]:
    if not usage.get("workers"):
        return []
    lines = [
        "",
        "| server process | CPU mean % | CPU max % | RSS start MiB | RSS end MiB | RSS max MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for worker in usage["workers"]:
        lines.append(
            f"| pid {worker['pid']} | {worker['cpu_mean']} | {worker['cpu_max']} | "
            f"{worker['rss_start_mib']} | {worker['rss_end_mib']} | {worker['rss_max_mib']} |"
        )
    lines.append(
        f"\nPostgreSQL CPU mean {usage['postgres_cpu_mean']} %, load generator CPU mean "
        f"{usage['client_cpu_mean']} % (100 % = one core; the machine has "
        f"{psutil.cpu_count()} cores)."
    )
    return lines


def locust_section(run: LocustRun) -> list[str]:
    lines = [
        f"## {run.name}",
        "",
        run.description,
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in sorted(run.stats, key=lambda r: (r["name"] == "Aggregated", -r["requests"])):
        label = row["name"] if row["name"] == "Aggregated" else f"{row['method']} {row['name']}"
        if row["name"] == "Aggregated":
            label = "**all**"
        lines.append(
            f"| {label} | {row['requests']} | {row['failures']} | {_fmt(row['rps'])} | "
            f"{_fmt(row['p50'])} | {_fmt(row['p95'])} | {_fmt(row['p99'])} | {_fmt(row['max'])} |"
        )
    lines.extend(usage_lines(run.usage))
    return [*lines, ""]


def wrk_section(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## get-by-id",
        "",
        "`GET /processes/{id}` over random ids with wrk (2 threads, "
        f"{results[0].get('connections', 32)} connections): the whole stack (token check, "
        "middleware, metrics, ETag) against the minimal Starlette + asyncpg app "
        "(`locust/reference_app.py`), one after the other on the same database.",
        "",
        "| server | workers | req/s | p50 ms | p90 ms | p99 ms | errors | worker CPU % | "
        "PostgreSQL CPU % | wrk CPU % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        usage = result["usage"]
        cpu = " + ".join(str(w["cpu_mean"]) for w in usage["workers"])
        lines.append(
            f"| {result['server']} | {result['workers']} | {_fmt(result['rps'])} | "
            f"{result['p50']:.1f} | {result['p90']:.1f} | {result['p99']:.1f} | "
            f"{result['errors']} | {cpu} | {usage['postgres_cpu_mean']} | "
            f"{usage['client_cpu_mean']} |"
        )
    return [*lines, ""]


def targets(results: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, str, str]] = []
    runs: dict[str, LocustRun] = results["runs"]
    if "mix" in runs:
        rows.append(mix_target(runs["mix"]))
    if "reference" in runs:
        total = aggregated(runs["reference"])
        met = total["failures"] == 0 and total["p99"] < TARGET_P99_MS
        rows.append(
            (
                "Reference mix, 100 users, 0.1-2 s think time: every request served, "
                f"p99 < {TARGET_P99_MS:.0f} ms, no failures",
                f"{_fmt(total['rps'])} req/s ({total['rps'] / REFERENCE_THINK_RPS:.1f}x the "
                f"reference's {REFERENCE_THINK_RPS}), p99 {_fmt(total['p99'])} ms, "
                f"{total['failures']} failures",
                "met" if met else "NOT met",
            )
        )
    if "reference-nothink" in runs:
        total = aggregated(runs["reference-nothink"])
        ratio = total["rps"] / REFERENCE_NOTHINK_RPS
        rows.append(
            (
                "Reference mix without think time: >= 50x the reference's "
                f"{REFERENCE_NOTHINK_RPS} req/s",
                f"{_fmt(total['rps'])} req/s = {ratio:.0f}x, p50 {_fmt(total['p50'])} ms, "
                f"p99 {_fmt(total['p99'])} ms",
                "met" if ratio >= 50 else "NOT met",
            )
        )
    for workers, (ours, minimal) in sorted(results.get("get_by_id_pairs", {}).items()):
        ratio = ours["rps"] / minimal["rps"] if minimal["rps"] else 0.0
        rows.append(
            (
                f"GET by id, whole stack >= 1/2 of the minimal app ({workers} worker(s))",
                f"{_fmt(ours['rps'])} vs {_fmt(minimal['rps'])} req/s = {ratio:.2f}",
                "met" if ratio >= 0.5 else "NOT met",
            )
        )
    for compared in results.get("raw_mix", {}).get("comparisons", []):
        rows.append(
            (
                f"{compared['comparison']}: Atlas >= {TARGET_RAW_RATIO} x the raw-limit fixture "
                f"({compared['atlas']['tool']}, {compared['atlas']['failures']} failures)",
                f"{_fmt(compared['atlas']['median_rps'])} vs "
                f"{_fmt(compared['fixture']['median_rps'])} req/s = {compared['ratio']:.2f}",
                "met" if compared["met"] else "NOT met",
            )
        )
    if "login-storm-quiet" in runs and "login-storm" in runs:
        quiet = endpoint(runs["login-storm-quiet"], "/processes/{id}")
        storm = endpoint(runs["login-storm"], "/processes/{id}")
        logins = endpoint(runs["login-storm"], "/auth/token [storm]")
        ratio = storm["p99"] / quiet["p99"] if quiet["p99"] else float("inf")
        rows.append(
            (
                "Login storm: GET by id p99 within 2x its quiet value",
                f"p99 {_fmt(quiet['p99'])} ms quiet, {_fmt(storm['p99'])} ms during "
                f"{_fmt(logins['rps'])} logins/s = {ratio:.2f}x",
                "met" if ratio <= 2 else "NOT met",
            )
        )
    if "soak" in runs:
        workers = runs["soak"].usage.get("workers", [])
        rss = ", ".join(f"{w['rss_end_mib']} MiB" for w in workers)
        rows.append(
            (
                f"RSS per worker after {runs['soak'].duration // 60} minutes of load",
                rss or "-",
                "reported",
            )
        )
    if not rows:
        return []
    lines = ["## Targets of the issue", "", "| target | measured | |", "| --- | --- | --- |"]
    lines.extend(f"| {target} | {measured} | {verdict} |" for target, measured, verdict in rows)
    return [*lines, ""]


def mix_target(run: LocustRun) -> tuple[str, str, str]:
    """The realistic mix's target: p99 <= TARGET_P99_MS and no failure at 300 users."""
    total = aggregated(run)
    met = total["failures"] == 0 and total["p99"] <= TARGET_P99_MS
    at = "" if run.users == TARGET_MIX_USERS else f" (the target is at {TARGET_MIX_USERS})"
    return (
        f"`AtlasUser` mix, {run.users} users{at}, 0.5-3 s think time: "
        f"p99 <= {TARGET_P99_MS:.0f} ms, no failures",
        f"{_fmt(total['rps'])} req/s, p99 {_fmt(total['p99'])} ms, {total['failures']} failures "
        f"of {total['requests']}",
        "met" if met else "NOT met",
    )


def write_report(out: Path, args: Any, context: dict[str, Any], results: dict[str, Any]) -> Path:
    lines = [
        f"# Benchmark {context['started']}",
        "",
        f"- machine: {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load average before "
        f"{context['load_before']}",
        f"- server: {args.server}, {args.workers} workers; database `{context['database']}` "
        f"(seeded: {context['seeded']})",
        f"- settings: {', '.join(f'{k}={v}' for k, v in sorted(context['settings'].items()))}",
        f"- command: `{context['command']}`",
        "",
    ]
    lines.extend(targets(results))
    if results.get("raw_mix"):
        lines.extend(raw_mix_section(results["raw_mix"], args))
    for run in results["runs"].values():
        lines.extend(locust_section(run))
    if results.get("get_by_id"):
        lines.extend(wrk_section(results["get_by_id"]))
    for run in results["runs"].values():
        if run.not_ready:
            lines.append(f"> {run.name}: {run.not_ready}: sign-ins count in its statistics.\n")
    for round_ in results.get("raw_mix", {}).get("rounds", []):
        if round_.get("not_ready"):
            lines.append(f"> raw-mix {round_['label']}: {round_['not_ready']}.\n")
    for note in results.get("notes", []):
        lines.append(f"> {note}\n")
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    serialisable = {
        **{k: v for k, v in results.items() if k not in ("runs", "get_by_id_pairs")},
        "runs": {name: run.__dict__ for name, run in results["runs"].items()},
        "context": context,
    }
    (out / "results.json").write_text(json.dumps(serialisable, indent=2, default=str))
    return path


# --- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scenarios = set(SCENARIOS if "all" in args.scenario else args.scenario)
    started = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = args.out / started
    out.mkdir(parents=True, exist_ok=True)
    args.out_dir = out
    if "get-by-id" in scenarios and args.wrk_duration >= args.access_token_minutes * 60 - 10:
        raise SystemExit("--wrk-duration must end well before the access token expires")
    if "raw-mix" in scenarios and args.round_duration >= args.access_token_minutes * 60 - 10:
        raise SystemExit("--round-duration must end well before the access token expires")

    server_url, redis_url = resolve_servers()
    database = f"atlas_bench_{started.replace('-', '_')}"
    prefix = f"pa-bench-{started}:"
    password = os.environ.get("DEMO_PASSWORD") or "atlas-demo-password"
    metrics_dir = Path(tempfile.mkdtemp(prefix="atlas-bench-metrics-"))
    settings = {
        "AUTO_MIGRATE": "false",
        "LOG_LEVEL": "WARNING",
        "REDIS_KEY_PREFIX": prefix,
        "ACCESS_TOKEN_MINUTES": str(args.access_token_minutes),
        "RATE_LIMIT_ENABLED": "false" if args.no_rate_limit else "true",
        "RATE_LIMIT_DEFAULT": "1000000/second",
        "RATE_LIMIT_AUTH": "1000000/second",
        "LOGIN_MAX_FAILURES_PER_IP": "1000000",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    if args.experiments:
        settings["EXPERIMENTS"] = args.experiments
    for item in args.env:
        name, _, value = item.partition("=")
        settings[name.upper()] = value
    env = {**os.environ, "REDIS_URL": redis_url, "DEMO_PASSWORD": password, **settings}
    context: dict[str, Any] = {
        "started": started,
        "database": database,
        "settings": settings,
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "load_before": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    print(f"bench: writing to {out}")
    database_url, report = prepare_database(server_url, database, env)
    context["seeded"] = f"{report.processes} processes, {report.users} users"
    env["DATABASE_URL"] = database_url
    results: dict[str, Any] = {"runs": {}, "notes": []}
    locust_env = {"ATLAS_USERNAME": DEMO_ADMIN, "ATLAS_PASSWORD": password}
    plan = [
        LocustRun(
            "mix",
            ["AtlasUser"],
            args.users,
            args.duration,
            f"`AtlasUser`: {args.users} users with 0.5-3 s think time, every domain "
            "(reads far more than writes), measured once every user has signed in.",
            # p99 is the target here: no request queued behind a sign-in (argon2) counts.
            when_ready=True,
        ),
        LocustRun(
            "reference",
            ["ReferenceMix"],
            args.users,
            args.duration,
            f"`ReferenceMix`: the reference project's mix on our API, {args.users} "
            "users with 0.1-2 s think time.",
        ),
        LocustRun(
            "reference-nothink",
            ["ReferenceMixNoThink"],
            args.nothink_users,
            args.duration,
            f"`ReferenceMixNoThink`: the same mix, {args.nothink_users} users, "
            "no think time (as fast as the server answers).",
        ),
        LocustRun(
            "login-storm-quiet",
            ["ProcessReader"],
            20,
            max(20, args.duration // 2),
            "`ProcessReader`: 20 users each reading 5 processes/s (100 req/s), alone.",
        ),
        LocustRun(
            "login-storm",
            ["ProcessReader", "LoginStorm"],
            24,
            max(20, args.duration // 2),
            "The same 20 readers while 4 `LoginStorm` users sign in without pause "
            "(argon2id t=3, m=64 MiB, p=4 each).",
            extra=[
                "--config-users",
                json.dumps({"user_class_name": "LoginStorm", "fixed_count": 4}),
            ],
        ),
        LocustRun(
            "soak",
            ["AtlasUser"],
            args.users,
            args.soak_duration,
            f"`AtlasUser` for {args.soak_duration // 60} minutes: RSS per worker.",
        ),
    ]
    plan = [run for run in plan if run.name.removesuffix("-quiet") in scenarios]
    progress = Progress(planned_seconds(plan, scenarios, args))
    try:
        with running(atlas_server(args.server, args.workers, env, out / "server.log")) as server:
            for run in plan:
                run.env = locust_env
                with progress.scenario(run.name, run.duration + ramp_seconds(run)):
                    results["runs"][run.name] = run_locust(run, server, out)
        clear_redis(redis_url, prefix)
        if "get-by-id" in scenarios:
            if shutil.which("wrk") is None:
                message = (
                    "get-by-id skipped: wrk is not installed (Debian: apt-get install wrk); "
                    "the other scenarios ran."
                )
                print(f"bench: {message}")
                results["notes"].append(message)
            else:
                compare_get_by_id(args, env, database_url, password, out, results, progress)
        if "raw-mix" in scenarios:
            compare_raw_mix(args, env, locust_env, database_url, out, results, progress)
    finally:
        if not args.keep_database:
            drop(database_url)
        clear_redis(redis_url, prefix)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    path = write_report(out, args, context, results)
    print(path.read_text())
    print(f"bench: report in {path}")
    return 0


def planned_seconds(plan: list[LocustRun], scenarios: set[str], args: Any) -> float:
    """How long the chosen scenarios should take, server start-ups left out."""
    seconds = float(sum(run.duration + ramp_seconds(run) for run in plan))
    if "get-by-id" in scenarios and shutil.which("wrk") is not None:
        seconds += len({1, args.workers}) * 2 * (WRK_WARM_UP_SECONDS + args.wrk_duration)
    if "raw-mix" in scenarios:
        atlas_ramp = int(args.nothink_users / SIGN_INS_PER_SECOND) + 1
        locust_round = 2 * args.round_duration + atlas_ramp + 2
        wrk_round = 2 * (WRK_WARM_UP_SECONDS + args.round_duration)
        per_round = locust_round + sum(
            wrk_round if c.paths and shutil.which("wrk") else locust_round
            for c in RAW_COMPARISONS[1:]
        )
        seconds += args.rounds * per_round
    return seconds


def compare_get_by_id(
    args: Any,
    env: dict[str, str],
    database_url: str,
    password: str,
    out: Path,
    results: Any,
    progress: Progress,
) -> None:
    """wrk against the whole stack and the minimal app, 1 worker then N, alternating."""
    results["get_by_id"] = []
    results["get_by_id_pairs"] = {}
    for workers in sorted({1, args.workers}):
        with running(atlas_server(args.server, workers, env, out / "server.log")) as server:
            token = sign_in(server, password)
            ids = process_ids(server, token)
            with progress.scenario(
                f"get-by-id: process-atlas, {workers} worker(s)",
                WRK_WARM_UP_SECONDS + args.wrk_duration,
            ):
                paths = [f"/api/v1/processes/{i}" for i in ids]
                ours = run_wrk(server, f"atlas-{workers}w", paths, token, args)
        ours.update(server="process-atlas (whole stack)", workers=workers)
        with (
            running(reference_server(workers, database_url, out / "reference.log")) as server,
            progress.scenario(
                f"get-by-id: reference app, {workers} worker(s)",
                WRK_WARM_UP_SECONDS + args.wrk_duration,
            ),
        ):
            paths = [f"/processes/{i}" for i in ids]
            minimal = run_wrk(server, f"reference-{workers}w", paths, None, args)
        minimal.update(server="minimal Starlette + asyncpg", workers=workers)
        for result in (ours, minimal):
            result["connections"] = args.wrk_connections
        results["get_by_id"].extend([ours, minimal])
        results["get_by_id_pairs"][workers] = (ours, minimal)


# --- raw-mix: Atlas against the raw-limit fixture ---------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One pair of raw-mix measurements: the same requests to Atlas and to the fixture."""

    name: str
    # Which of the mix's tasks run when locust measures it (the mix's tags).
    tags: tuple[str, ...] = ()
    # The GETs wrk sends, from the ids of the processes; None: always locust (a mix).
    paths: Callable[[list[int]], list[str]] | None = None


RAW_COMPARISONS = (
    Comparison("reference mix (closed loop, no think time)"),
    Comparison(
        "GET by id",
        ("--tags", "read", "--exclude-tags", "list"),
        lambda ids: [f"/api/v1/processes/{i}" for i in ids],
    ),
    Comparison("list of 100", ("--tags", "list"), lambda _: ["/api/v1/processes?limit=100"]),
)
RAW_SIDES = {"atlas": "ReferenceMixNoThink", "fixture": "RawMixNoThink"}


@dataclass
class RawMix:
    """What every round of the raw-mix scenario needs."""

    args: Any
    password: str
    locust_env: dict[str, str]
    out: Path
    progress: Progress
    ids: list[int] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def measure(self, comparison: Comparison, side: str, server: Server, number: int) -> None:
        """One round of one side: wrk for single GETs when installed, else locust."""
        slug = re.sub(r"[^a-z0-9]+", "-", comparison.name.split(" (")[0].lower())
        label = f"raw-mix-{slug}-{side}-{number}"
        duration = self.args.round_duration
        wrk = comparison.paths is not None and shutil.which("wrk") is not None
        title = f"raw-mix: {comparison.name}, {side}, round {number}/{self.args.rounds}"
        if wrk and comparison.paths is not None:
            with self.progress.scenario(title, WRK_WARM_UP_SECONDS + duration):
                token = sign_in(server, self.password) if side == "atlas" else None
                paths = comparison.paths(self.ids)
                result = run_wrk(server, label, paths, token, self.args, duration)
            failures, usage, late = result["errors"], result["usage"], ""
        else:
            run = LocustRun(
                label,
                [RAW_SIDES[side]],
                self.args.nothink_users,
                duration,
                comparison.name,
                extra=list(comparison.tags),
                env=self.locust_env if side == "atlas" else {},
                # Nobody signs in to the fixture: every user at once.
                spawn=None if side == "atlas" else float(self.args.nothink_users),
                when_ready=True,
            )
            with self.progress.scenario(title, duration + ramp_seconds(run)):
                run_locust(run, server, self.out)
            result = aggregated(run)
            failures, usage, late = result["failures"], run.steady, run.not_ready
        worker_cpu = sum(worker["cpu_mean"] for worker in usage.get("workers", []))
        rps = float(result["rps"])
        self.rounds.append(
            {
                "comparison": comparison.name,
                "side": side,
                "round": number,
                "label": label,
                "not_ready": late,
                "tool": "wrk" if wrk else "locust",
                "rps": rps,
                "failures": failures,
                "p50": result["p50"],
                "p99": result["p99"],
                # Worker CPU time per request, steadier than req/s on a shared machine.
                "worker_cpu_ms": round(worker_cpu / 100 / rps * 1000, 2) if rps else None,
                "postgres_cpu_mean": usage.get("postgres_cpu_mean"),
            }
        )

    def summary(self) -> list[dict[str, Any]]:
        """Per comparison: each side's rounds and median, the ratio, the target met or not."""
        compared = []
        for comparison in RAW_COMPARISONS:
            sides: dict[str, Any] = {}
            for side in RAW_SIDES:
                rounds = [
                    r
                    for r in self.rounds
                    if r["comparison"] == comparison.name and r["side"] == side
                ]
                cpu = [r["worker_cpu_ms"] for r in rounds if r["worker_cpu_ms"] is not None]
                sides[side] = {
                    "rps": [r["rps"] for r in rounds],
                    "median_rps": median([r["rps"] for r in rounds]),
                    "failures": sum(r["failures"] for r in rounds),
                    "median_p99": median([r["p99"] for r in rounds]),
                    "median_worker_cpu_ms": median(cpu),
                    "tool": rounds[0]["tool"] if rounds else "-",
                }
            atlas, fixture = sides["atlas"], sides["fixture"]
            ratio = atlas["median_rps"] / fixture["median_rps"] if fixture["median_rps"] else 0.0
            compared.append(
                {
                    "comparison": comparison.name,
                    **sides,
                    "ratio": round(ratio, 3),
                    "met": ratio >= TARGET_RAW_RATIO and atlas["failures"] == 0,
                }
            )
        return compared


def median(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values)) if values else float("nan")


def compare_raw_mix(
    args: Any,
    env: dict[str, str],
    locust_env: dict[str, str],
    database_url: str,
    out: Path,
    results: Any,
    progress: Progress,
) -> None:
    """Atlas and the raw-limit fixture side by side, N workers each, in alternating rounds.

    Both servers run for the whole scenario (one pair at a time, nothing else); each
    round loads one of them, Atlas first in odd rounds and the fixture first in even
    ones (ABBA), so a drift of the machine's speed weighs on both alike.
    """
    # Sign-ins happen before a round is measured, never in it: at the default niceness
    # (10) argon2 on a busy machine kept 32 of them waiting past two minutes.
    signing_in = {"PASSWORD_HASH_NICENESS": "0", **env}
    with (
        running(atlas_server(args.server, args.workers, signing_in, out / "server.log")) as atlas,
        running(reference_server(args.workers, database_url, out / "reference.log")) as raw,
    ):
        plan = RawMix(args, env["DEMO_PASSWORD"], locust_env, out, progress)
        plan.ids = process_ids(atlas, sign_in(atlas, plan.password))
        servers = {"atlas": atlas, "fixture": raw}
        for comparison in RAW_COMPARISONS:
            for number in range(1, args.rounds + 1):
                order = list(RAW_SIDES) if number % 2 else list(reversed(RAW_SIDES))
                for side in order:
                    plan.measure(comparison, side, servers[side], number)
    results["raw_mix"] = {"rounds": plan.rounds, "comparisons": plan.summary()}


def raw_mix_section(raw_mix: dict[str, Any], args: Any) -> list[str]:
    lines = [
        "## Ratios against the raw-limit fixture",
        "",
        f"Process Atlas (the whole stack) against `locust/reference_app.py` (Starlette + "
        "asyncpg: the same SQL effects and JSON, no authentication, no middleware, no ORM), "
        f"{args.workers} uvicorn workers each, both running; {args.rounds} rounds of "
        f"{args.round_duration} s per side, alternating (ABBA), medians. The mix: "
        f"`ReferenceMixNoThink` / `RawMixNoThink`, {args.nothink_users} users; single GETs: "
        f"wrk, {args.wrk_connections} connections (locust, {args.nothink_users} users, "
        f"when wrk is missing). Target: Atlas >= {TARGET_RAW_RATIO} x the fixture, no failures.",
        "",
        "| comparison | tool | Atlas req/s (rounds) | fixture req/s (rounds) | ratio | "
        "failures Atlas / fixture | p99 ms Atlas / fixture | worker CPU ms/req Atlas / fixture "
        f"| >= {TARGET_RAW_RATIO} |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in raw_mix["comparisons"]:
        atlas, fixture = row["atlas"], row["fixture"]

        def rounds(side: dict[str, Any]) -> str:
            return f"**{_fmt(side['median_rps'])}** ({', '.join(_fmt(r) for r in side['rps'])})"

        lines.append(
            f"| {row['comparison']} | {atlas['tool']} | {rounds(atlas)} | {rounds(fixture)} | "
            f"{row['ratio']:.2f} | {atlas['failures']} / {fixture['failures']} | "
            f"{_fmt(atlas['median_p99'])} / {_fmt(fixture['median_p99'])} | "
            f"{atlas['median_worker_cpu_ms']:.2f} / {fixture['median_worker_cpu_ms']:.2f} | "
            f"{'met' if row['met'] else 'NOT met'} |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(main())
