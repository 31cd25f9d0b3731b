"""PostgreSQL goes away and comes back: clients get 503 problems, the app heals by itself.

These run against a cluster the tests start on a spare port (`postgres_cluster`), so
stopping it harms nothing else. Waits are bounded polls, never sleeps that assume timing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import Settings
from tests.conftest import make_settings
from tests.reliability.conftest import add_superuser, assert_problem, serve
from tests.reliability.servers import PostgresCluster

pytestmark = pytest.mark.slow

DEPARTMENTS = "/api/v1/departments"
RECOVERY_ATTEMPTS = 100  # polls of 0.1 s: recovery may take up to 10 s on a slow machine


@pytest.fixture
def cluster_settings(cluster_database_url: str, redis_url: str) -> Settings:
    # Short connect and pool timeouts: a dead server must cost a client little waiting.
    return make_settings(
        database_url=cluster_database_url,
        redis_url=redis_url,
        db_connect_timeout=2,
        db_pool_timeout=2,
        rate_limit_enabled=False,
    )


async def _eventually(call: Callable[[], Awaitable[Response]], status: int) -> Response:
    """Poll `call` until it answers `status` (bounded), and return that answer."""
    response = await call()
    for _ in range(RECOVERY_ATTEMPTS):
        if response.status_code == status:
            return response
        await asyncio.sleep(0.1)
        response = await call()
    return response


async def test_stopped_postgres_answers_503_problems_and_ready_503_then_heals(
    cluster: PostgresCluster, cluster_settings: Settings, cluster_database_url: str
) -> None:
    headers = await add_superuser(cluster_database_url, cluster_settings)
    async with serve(cluster_settings) as client:
        created = await client.post(DEPARTMENTS, headers=headers, json={"name": "Before"})
        assert created.status_code == 201

        await asyncio.to_thread(cluster.stop, "fast")

        listing = await client.get(DEPARTMENTS, headers=headers)
        assert_problem(listing, 503)
        assert listing.headers["retry-after"]
        write = await client.post(DEPARTMENTS, headers=headers, json={"name": "During"})
        assert_problem(write, 503)
        ready = await client.get("/api/v1/ready")
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "database": "down", "redis": "up"}
        assert (await client.get("/api/v1/health")).status_code == 200

        await asyncio.to_thread(cluster.start)

        ready = await _eventually(lambda: client.get("/api/v1/ready"), 200)
        assert ready.json() == {"status": "ok", "database": "up", "redis": "up"}
        listing = await _eventually(lambda: client.get(DEPARTMENTS, headers=headers), 200)
        names = [item["name"] for item in listing.json()["items"]]
        assert "Before" in names
        assert "During" not in names


async def test_postgres_crash_in_the_middle_of_traffic_answers_only_2xx_or_503(
    cluster: PostgresCluster, cluster_settings: Settings, cluster_database_url: str
) -> None:
    """Writers keep writing while the server crashes and restarts; what got 201 was kept."""
    headers = await add_superuser(cluster_database_url, cluster_settings)
    statuses: Counter[int] = Counter()
    acknowledged: list[str] = []
    problems: list[Response] = []
    stop = asyncio.Event()

    async def writer(client: AsyncClient, number: int) -> None:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            code = f"W{number}-{sequence}-{uuid.uuid4().hex[:6]}"
            response = await client.post(DEPARTMENTS, headers=headers, json={"name": code})
            statuses[response.status_code] += 1
            if response.status_code == 201:
                acknowledged.append(code)
            elif response.status_code >= 500:
                problems.append(response)
                await asyncio.sleep(0.02)

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(RECOVERY_ATTEMPTS * 3):
            if condition():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"traffic never reached the expected state: {dict(statuses)}")

    async with serve(cluster_settings) as client:
        writers = [asyncio.create_task(writer(client, n)) for n in range(4)]
        try:
            await until(lambda: statuses[201] >= 10)
            await asyncio.to_thread(cluster.stop, "immediate")
            await until(lambda: statuses[503] >= 4)
            await asyncio.to_thread(cluster.start)
            healed_at = statuses[201]
            await until(lambda: statuses[201] >= healed_at + 10)
        finally:
            stop.set()
            await asyncio.gather(*writers)

    assert set(statuses) <= {201, 503}, statuses
    for response in problems:
        assert_problem(response, 503)
    engine = create_async_engine(cluster_database_url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            stored = set((await connection.scalars(text("SELECT name FROM departments"))).all())
    finally:
        await engine.dispose()
    assert set(acknowledged) <= stored, "a write answered 201 was lost"
