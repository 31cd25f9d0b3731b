"""`python -m app serve` for real: metrics and rate limits hold across workers; SIGTERM drains.

Each test starts the server as a subprocess on a free port, against this test process's
migrated database and the real Redis (under a key prefix of its own).
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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.slow

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _serve(
    data_dir: Path, database_url: str, redis_url: str, *, workers: int, **settings: str
) -> Iterator[Server]:
    port = _free_port()
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
    output = data_dir / "server.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "app", "serve"),
                *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            ],
            cwd=data_dir,  # no developer .env is read
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, output, data_dir, prefix)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        _stop(process)


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited during start-up:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/api/v1/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not become ready:\n{server.log()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server; SIGKILL its whole process group if it has not left in time."""
    if process.poll() is None:
        process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


async def _burst(url: str, count: int) -> list[httpx.Response]:
    """`count` concurrent requests, each on a new connection, so both workers get some."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        return await asyncio.gather(*(client.get(url) for _ in range(count)))


def _per_worker(
    directory: Path, name: str, kind: str = "counter", **labels: str
) -> dict[int, float]:
    """A metric's value in each worker's own file (`kind`: counter, gauge_livesum...)."""
    values: dict[int, float] = {}
    for path in directory.glob(f"{kind}_*.db"):
        pid = int(path.stem.removeprefix(f"{kind}_"))
        for metric in MultiProcessCollector.merge([str(path)], accumulate=False):
            for sample in metric.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    values[pid] = values.get(pid, 0.0) + sample.value
    return {pid: value for pid, value in values.items() if value}


def _scraped(server: Server, name: str, **labels: str) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> Iterator[Server]:
    with _serve(
        tmp_path_factory.mktemp("two-workers"),
        database_url,
        redis_url,
        workers=2,
        RATE_LIMIT_DEFAULT="5/hour",
    ) as server:
        yield server


@pytest.fixture
async def server_keys(two_workers: Server, redis: Redis) -> AsyncIterator[None]:
    yield
    keys = [key async for key in redis.scan_iter(match=f"{two_workers.key_prefix}*")]
    if keys:
        await redis.delete(*keys)


async def test_two_workers_metrics_add_up_to_the_requests_sent(
    two_workers: Server, server_keys: None
) -> None:
    health = {"method": "GET", "route": "/api/v1/health", "status": "200"}
    sent = 0
    for _ in range(20):
        answers = await _burst(f"{two_workers.url}/api/v1/health", 20)
        assert all(answer.status_code == 200 for answer in answers)
        sent += len(answers)
        if len(_per_worker(two_workers.metrics_dir, "http_requests_total", **health)) == 2:
            break

    def per_worker() -> dict[int, float]:
        return _per_worker(two_workers.metrics_dir, "http_requests_total", **health)

    # A worker counts a request just after sending its last byte: let the last ones land.
    await _until(lambda: sum(per_worker().values()) >= sent)
    assert len(per_worker()) == 2, "both workers should have served some requests"
    assert sum(per_worker().values()) == sent
    assert _scraped(two_workers, "http_requests_total", **health) == sent
    assert (
        _scraped(
            two_workers,
            "http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/health",
        )
        == sent
    )
    assert _scraped(two_workers, "db_pool_size") == 4  # DB_POOL_SIZE=2 in each of 2 workers
    assert _scraped(two_workers, "http_requests_in_progress", route="/api/v1/health") == 0


async def test_two_workers_share_one_rate_limit(two_workers: Server, server_keys: None) -> None:
    route = {"method": "GET", "route": "/api/v1/openapi.json"}
    answers: list[httpx.Response] = []
    for _ in range(10):
        answers += await _burst(f"{two_workers.url}/api/v1/openapi.json", 10)
        if len(_per_worker(two_workers.metrics_dir, "http_requests_total", **route)) == 2:
            break
    served_by = _per_worker(two_workers.metrics_dir, "http_requests_total", **route)
    statuses = [answer.status_code for answer in answers]

    assert len(served_by) == 2, "both workers should have answered"
    # Per-worker buckets would have let at least 6 through: one worker answered 5 or more.
    assert statuses.count(200) == 5
    assert statuses.count(429) == len(answers) - 5
    refused = next(answer for answer in answers if answer.status_code == 429)
    assert refused.headers["x-ratelimit-limit"] == "5"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) > 0
    assert _scraped(two_workers, "rate_limited_requests_total") == len(answers) - 5


async def test_a_killed_worker_drops_out_of_the_live_gauges(
    two_workers: Server, server_keys: None
) -> None:
    pools = _per_worker(two_workers.metrics_dir, "db_pool_size", "gauge_livesum")
    assert sorted(pools.values()) == [2, 2]
    victim = min(pools)
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pools = _per_worker(two_workers.metrics_dir, "db_pool_size", "gauge_livesum")
        return len(set(pools) - {victim}) == 2

    await _until(replaced, within=STARTUP_SECONDS)
    # The dead worker's file still says 2 until a scrape notices the process is gone.
    assert _scraped(two_workers, "db_pool_size") == 4
    assert victim not in _per_worker(two_workers.metrics_dir, "db_pool_size", "gauge_livesum")


async def test_sigterm_lets_the_request_in_flight_finish(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    body = b'{"refresh_token": "in-flight"}'
    with _serve(tmp_path, database_url, redis_url, workers=1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /api/v1/auth/refresh HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
        )
        await writer.drain()
        in_flight = {"route": "/api/v1/auth/refresh"}
        await _until(lambda: _scraped(server, "http_requests_in_progress", **in_flight) == 1)

        server.process.send_signal(signal.SIGTERM)
        await _until(lambda: "Shutting down" in server.log())
        async with httpx.AsyncClient(timeout=1) as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"{server.url}/api/v1/health")

        writer.write(body[10:])
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        response = status_line + await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()

        assert status_line.startswith(b"HTTP/1.1 401"), response
        assert b"refresh token" in response.lower()
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert server.process.wait(timeout=10) in {0, -signal.SIGTERM}
        log = server.log()
        assert (
            log.index("Shutting down")
            < log.index("POST /api/v1/auth/refresh 401")
            < log.index('"message": "stopped"')
        )


async def _until(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.05)
