"""`python -m app serve` for real: metrics and rate limits hold across workers; SIGTERM drains.

Each test starts the server as a subprocess on a free port, against this test process's
migrated database and the real Redis (under a key prefix of its own).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from tests.serving import STARTUP_SECONDS, Server, serve, until

pytestmark = pytest.mark.slow


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
    with serve(
        tmp_path_factory.mktemp("two-workers"),
        database_url,
        redis_url,
        workers=2,
        RATE_LIMIT_DEFAULT="5/hour",
    ) as server:
        yield server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until_both_workers_answer(server: Server) -> None:
    """Readiness probes (never rate limited) until two live workers have each answered one.

    `serve` returns once the server answers, which one worker suffices for: on a loaded
    machine the other may still be starting, and a killed one is replaced after a while.
    """
    ready = {"method": "GET", "route": "/api/v1/ready"}

    def answered() -> set[int]:
        counted = _per_worker(server.metrics_dir, "http_requests_total", **ready)
        return {pid for pid in counted if _alive(pid)}

    for _ in range(STARTUP_SECONDS * 4):
        if len(answered()) >= 2:
            return
        await _burst(f"{server.url}/api/v1/ready", 10)
        await asyncio.sleep(0.25)
    raise AssertionError(f"only {sorted(answered())} answered within {STARTUP_SECONDS} s")


@pytest.fixture
async def server_keys(two_workers: Server, redis: Redis) -> AsyncIterator[None]:
    await _until_both_workers_answer(two_workers)
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
    await until(lambda: sum(per_worker().values()) >= sent)
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

    await until(replaced, within=STARTUP_SECONDS)
    # The dead worker's file still says 2 until a scrape notices the process is gone.
    assert _scraped(two_workers, "db_pool_size") == 4
    assert victim not in _per_worker(two_workers.metrics_dir, "db_pool_size", "gauge_livesum")


async def test_sigterm_lets_the_request_in_flight_finish(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    body = b'{"refresh_token": "in-flight"}'
    with serve(tmp_path, database_url, redis_url, workers=1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /api/v1/auth/refresh HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body[:10]
        )
        await writer.drain()
        in_flight = {"route": "/api/v1/auth/refresh"}
        await until(lambda: _scraped(server, "http_requests_in_progress", **in_flight) == 1)

        server.process.send_signal(signal.SIGTERM)
        await until(lambda: "Shutting down" in server.log())
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
