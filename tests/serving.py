"""Real `python -m app serve` processes for tests: a free port, ready or failed, then stopped.

`launched` starts the CLI with the arguments and environment it is given; `serve` is the
usual case, the app against this test process's database and Redis under a prefix of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET

STARTUP_SECONDS = 30


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    output: Path
    data_dir: Path
    key_prefix: str

    @property
    def metrics_dir(self) -> Path:
        return self.data_dir / "prometheus" / str(self.port)

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def launched(
    arguments: Sequence[str],
    *,
    env: dict[str, str],
    data_dir: Path,
    key_prefix: str = "pa:",
    log_name: str = "server.log",
    startup_seconds: float = STARTUP_SECONDS,
) -> Iterator[Server]:
    """`python -m app serve ARGUMENTS` on a free port, run from `data_dir` (no `.env` read)."""
    port = free_port()
    output = data_dir / log_name
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "app", "serve"),
                *("--host", "127.0.0.1", "--port", str(port), *arguments),
            ],
            cwd=data_dir,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, output, data_dir, key_prefix)
    try:
        wait_until_ready(server, within=startup_seconds)
        yield server
    finally:
        stop(process)


@contextmanager
def serve(
    data_dir: Path, database_url: str, redis_url: str, *, workers: int, **settings: str
) -> Iterator[Server]:
    """The app with `workers` workers on the test database and Redis; `settings` override."""
    prefix = f"pa-test:serve:{uuid.uuid4().hex[:8]}:"
    env = {key: value for key, value in os.environ.items() if "PROMETHEUS" not in key}
    env.update(
        ENVIRONMENT="test",
        SECRET_KEY=TEST_SECRET,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=prefix,
        DATA_DIR=str(data_dir),
        AUTO_MIGRATE="false",
        LOG_JSON="true",
        DB_POOL_SIZE="2",
        DB_MAX_OVERFLOW="2",
        **settings,
    )
    with launched(
        ["--workers", str(workers)], env=env, data_dir=data_dir, key_prefix=prefix
    ) as server:
        yield server


def wait_until_ready(server: Server, *, within: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited during start-up:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/api/v1/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not become ready:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server; SIGKILL its whole process group if it has not left in time."""
    if process.poll() is None:
        process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


async def until(condition: Callable[[], bool], within: float = 10) -> None:
    """Poll `condition` until it holds; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.05)
