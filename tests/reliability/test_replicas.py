"""Read replicas against a real streaming replica: where reads go, read-your-writes, fallbacks.

One primary (initdb on a spare port, migrated) and one replica (`pg_basebackup -R` of it,
`pg_ctl` on another spare port) for the whole module. Tests that pause replay or stop the
replica put it back before they end, so they pass in any order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Request
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from app.core.config import Settings
from app.core.database import SessionDep, async_url, reads_primary
from app.core.read_after import READ_AFTER_COOKIE, READ_AFTER_HEADER
from app.core.replicas import parse_lsn
from app.main import create_app
from tests.conftest import make_settings
from tests.reliability.conftest import add_superuser
from tests.reliability.servers import PostgresCluster, migrated_database, running_cluster
from tests.statements import count_statements

pytestmark = pytest.mark.slow

DATABASE = "process_atlas"
DEPARTMENTS = "/api/v1/departments"
BASE_URL = "http://test"
POLL_SECONDS = 0.1
# Reads in these tests come moments after a write while replay is paused: the replica must
# stay "up" meanwhile, so only the client's read-after position sends them to the primary.
MAX_LAG_SECONDS = 60.0
WAIT_STEPS = 200  # polls of 0.05 s: a state change the poll sees within 10 s
# A restarted standby streams again at once instead of after the default 5 s; replay waits
# at most 1 s (not 30) for a read on the standby it conflicts with, and says so in its log,
# which a failed wait prints.
STANDBY_SETTINGS = (
    "wal_retrieve_retry_interval = '100ms'\n"
    "max_standby_streaming_delay = '1s'\n"
    "log_recovery_conflict_waits = on\n"
)


class StreamingReplica(PostgresCluster):
    """A hot standby of `primary`: `pg_basebackup -R` into a temporary directory."""

    @classmethod
    def of(cls, primary: PostgresCluster) -> StreamingReplica:
        replica = cls(primary.bindir, primary.run_as)
        replica._pg(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(replica.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        with (replica.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(STANDBY_SETTINGS)
        return replica

    def log_tail(self, characters: int = 2000) -> str:
        log = self.root / "log"
        return log.read_text(errors="replace")[-characters:] if log.exists() else "(no log)"


@dataclass
class Replicated:
    """The servers of the module and an app reading from the replica."""

    primary_url: str
    replica_url: str
    replica: StreamingReplica
    client: AsyncClient
    transport: ASGITransport
    headers: dict[str, str]
    settings: Settings


@pytest.fixture(scope="module")
def primary() -> Iterator[PostgresCluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
async def primary_url(primary: PostgresCluster) -> str:
    return await migrated_database(primary, DATABASE)


@pytest.fixture(scope="module")
def replica(primary: PostgresCluster, primary_url: str) -> Iterator[StreamingReplica]:
    server = StreamingReplica.of(primary)
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@asynccontextmanager
async def serving(
    settings: Settings, redis: Redis, *routes: APIRoute
) -> AsyncIterator[AsyncClient]:
    """A client of an app built with `settings` (and `routes`); its Redis keys go afterwards."""
    app = create_app(settings)
    app.router.routes.extend(routes)
    try:
        async with (
            LifespanManager(app) as manager,
            AsyncClient(transport=ASGITransport(app=manager.app), base_url=BASE_URL) as client,
        ):
            yield client
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{settings.redis_key_prefix}*")]
        if keys:
            await redis.delete(*keys)


def replicated_settings(
    primary_url: str, replica_url: str, redis_url: str, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": primary_url,
        "database_read_url": replica_url,
        "database_read_poll_seconds": POLL_SECONDS,
        "database_read_max_lag_seconds": MAX_LAG_SECONDS,
        "redis_url": redis_url,
        "db_connect_timeout": 2,
        "ready_timeout": 2,
    }
    return make_settings(**{**values, **extra})


@pytest.fixture(scope="module")
async def replicated(
    primary_url: str, replica: StreamingReplica, redis_url: str, redis: Redis
) -> AsyncIterator[Replicated]:
    replica_url = replica.url(DATABASE)
    settings = replicated_settings(primary_url, replica_url, redis_url)
    headers = await add_superuser(primary_url, settings)
    async with serving(settings, redis) as client:
        await wait_for_replica(client, "up")
        transport = client._transport
        assert isinstance(transport, ASGITransport)
        yield Replicated(primary_url, replica_url, replica, client, transport, headers, settings)


async def wait_for_replica(client: AsyncClient, status: str) -> dict[str, Any]:
    """The replica's readiness entry once it reports `status` (fails after WAIT_STEPS polls)."""
    for _ in range(WAIT_STEPS):
        response = await client.get("/api/v1/ready")
        assert response.status_code == 200, response.text
        (entry,) = response.json()["replicas"]
        if entry["status"] == status:
            return dict(entry)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the replica never reported {status!r}: {entry}")


async def metric(client: AsyncClient, name: str, **labels: str) -> float:
    """The sum of the samples of `name` with `labels`, scraped through GET /metrics."""
    text = (await client.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@asynccontextmanager
async def replay_paused(replica_url: str) -> AsyncIterator[None]:
    """The replica receives WAL but applies none of it until the block ends."""
    connection = await asyncpg.connect(str(async_url(replica_url).set(drivername="postgresql")))
    try:
        await connection.execute("SELECT pg_wal_replay_pause()")
        yield
    finally:
        await connection.execute("SELECT pg_wal_replay_resume()")
        await connection.close()


async def replayed_everything(replicated: Replicated) -> None:
    """Wait until the replica has replayed all the primary had written when this was called.

    An app's first poll samples the primary, then the replica: a replica still replaying
    then is reported lagging until the next poll, which an app polling rarely (or allowing
    little lag) makes late. A replica that never catches up fails with what it is doing.
    """
    primary_dsn = async_url(replicated.primary_url).set(drivername="postgresql")
    replica_dsn = async_url(replicated.replica_url).set(drivername="postgresql")
    primary = await asyncpg.connect(str(primary_dsn))
    replica = await asyncpg.connect(str(replica_dsn))
    try:
        written = await primary.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        replayed = None
        for _ in range(WAIT_STEPS):
            replayed = await replica.fetchval("SELECT pg_last_wal_replay_lsn()::text")
            if (parse_lsn(replayed) or -1) >= (parse_lsn(written) or 0):
                return
            await asyncio.sleep(0.05)
        paused = await replica.fetchval("SELECT pg_get_wal_replay_pause_state()")
        receiver = await replica.fetchrow(
            "SELECT status, flushed_lsn::text FROM pg_stat_wal_receiver"
        )
        raise AssertionError(
            f"the replica replayed {replayed}, not {written} (replay {paused}, "
            f"receiver {dict(receiver) if receiver else 'not running'})\n"
            f"{replicated.replica.log_tail()}"
        )
    finally:
        await primary.close()
        await replica.close()


async def polling_rarely(replicated: Replicated, redis_url: str) -> Settings:
    """Settings of a second app that polls every 30 s, once the replica has replayed all."""
    await replayed_everything(replicated)
    return replicated_settings(
        replicated.primary_url,
        replicated.replica_url,
        redis_url,
        database_read_poll_seconds=30.0,
    )


async def insert_on_primary(primary_url: str, name: str) -> int:
    """A department written straight to the primary, by no client of the app."""
    connection = await asyncpg.connect(str(async_url(primary_url).set(drivername="postgresql")))
    try:
        department_id: int = await connection.fetchval(
            "INSERT INTO departments (name) VALUES ($1) RETURNING id", name
        )
    finally:
        await connection.close()
    return department_id


async def test_reads_are_served_by_the_replica(replicated: Replicated) -> None:
    client, headers = replicated.client, replicated.headers
    replica_reads = await metric(client, "db_reads_total", target="replica")
    primary_reads = await metric(client, "db_reads_total", target="primary")

    for _ in range(5):
        response = await client.get(DEPARTMENTS, headers=headers)
        assert response.status_code == 200, response.text
        # Reads never carry a read-after position: only a write moves it.
        assert READ_AFTER_HEADER.lower() not in response.headers

    assert await metric(client, "db_reads_total", target="replica") == replica_reads + 5
    assert await metric(client, "db_reads_total", target="primary") == primary_reads


async def test_ready_reports_the_replica_up_with_its_lag(replicated: Replicated) -> None:
    response = await replicated.client.get("/api/v1/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    (entry,) = body["replicas"]
    assert entry["status"] == "up"
    assert 0 <= entry["lag_seconds"] < MAX_LAG_SECONDS
    assert entry["name"] == f"127.0.0.1:{replicated.replica.port}/{DATABASE}"


async def test_a_write_is_read_back_at_once_while_replay_is_paused(
    replicated: Replicated,
) -> None:
    client, headers = replicated.client, replicated.headers
    name = f"Paused {uuid.uuid4().hex[:8]}"
    behind = await metric(client, "db_read_fallbacks_total", reason="behind_client")

    async with replay_paused(replicated.replica_url):
        created = await client.post(DEPARTMENTS, headers=headers, json={"name": name})
        assert created.status_code == 201, created.text
        position = created.headers[READ_AFTER_HEADER]
        assert parse_lsn(position) is not None
        cookie = created.headers["set-cookie"]
        assert cookie.startswith(f"{READ_AFTER_COOKIE}={position};")
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http here
        url = f"{DEPARTMENTS}/{created.json()['id']}"

        # The same client: its cookie sends the read to the primary.
        assert client.cookies.get(READ_AFTER_COOKIE) == position
        again = await client.get(url, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["name"] == name
        # Another client sending the header instead of the cookie.
        async with AsyncClient(transport=replicated.transport, base_url=BASE_URL) as other:
            with_header = await other.get(url, headers={**headers, READ_AFTER_HEADER: position})
            assert with_header.status_code == 200, with_header.text
            # Without the position the replica answers, as it was before the write.
            stale = await other.get(url, headers=headers)
            assert stale.status_code == 404, stale.text
            # A valid header wins over the cookie: an old position reads from the replica.
            other.cookies.set(READ_AFTER_COOKIE, position)
            old = await other.get(url, headers={**headers, READ_AFTER_HEADER: "0/0"})
            assert old.status_code == 404, old.text
            # A malformed header is ignored (then the cookie counts); never an error.
            garbage = await other.get(url, headers={**headers, READ_AFTER_HEADER: "x/y';--"})
            assert garbage.status_code == 200, garbage.text

    assert await metric(client, "db_read_fallbacks_total", reason="behind_client") >= behind + 3
    client.cookies.clear()


async def test_a_replica_that_caught_up_with_the_client_serves_its_next_reads(
    replicated: Replicated, redis_url: str, redis: Redis
) -> None:
    # An app that polls rarely: its cached replay position is always behind a new write,
    # so each read after one asks the replica afresh, and uses it once it has replayed.
    rarely = await polling_rarely(replicated, redis_url)
    async with serving(rarely, redis) as client:
        await wait_for_replica(client, "up")
        for round_ in range(3):
            created = await client.post(
                DEPARTMENTS, headers=replicated.headers, json={"name": f"Caught up {round_}"}
            )
            assert created.status_code == 201, created.text
            url = f"{DEPARTMENTS}/{created.json()['id']}"
            for _ in range(WAIT_STEPS):
                replica_reads = await metric(client, "db_reads_total", target="replica")
                read = await client.get(url, headers=replicated.headers)
                assert read.status_code == 200, read.text  # never stale: the cookie is sent
                if await metric(client, "db_reads_total", target="replica") > replica_reads:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"write {round_} was never read from the replica")


async def test_a_get_route_marked_reads_primary_reads_from_the_primary(
    replicated: Replicated, redis_url: str, redis: Redis
) -> None:
    async def reads_the_primary(request: Request, session: SessionDep) -> bool:
        return session.bind is request.state.engine

    @reads_primary
    async def locks(request: Request, session: SessionDep) -> bool:
        return await reads_the_primary(request, session)

    marked = APIRoute("/test/marked", locks)
    unmarked = APIRoute("/test/unmarked", reads_the_primary)
    settings = replicated_settings(replicated.primary_url, replicated.replica_url, redis_url)
    async with serving(settings, redis, marked, unmarked) as client:
        await wait_for_replica(client, "up")
        replica_reads = await metric(client, "db_reads_total", target="replica")

        assert (await client.get("/test/marked")).json() is True
        assert (await client.get("/test/unmarked")).json() is False

        assert await metric(client, "db_reads_total", target="replica") == replica_reads + 1


async def test_a_new_account_signs_in_while_the_replica_lags_behind_it(
    replicated: Replicated,
) -> None:
    # The account exists only on the primary while replay is paused: authentication reads
    # it there, whichever server the request's own reads use.
    async with replay_paused(replicated.replica_url):
        headers = await add_superuser(replicated.primary_url, replicated.settings)
        department = await insert_on_primary(replicated.primary_url, "Unreplicated")
        replica_reads = await metric(replicated.client, "db_reads_total", target="replica")

        listed = await replicated.client.get(DEPARTMENTS, headers=headers)

        assert listed.status_code == 200, listed.text
        assert department not in {item["id"] for item in listed.json()["items"]}
        assert await metric(replicated.client, "db_reads_total", target="replica") == (
            replica_reads + 1
        )


async def test_a_lagging_replica_is_left_for_the_primary(
    replicated: Replicated, redis_url: str, redis: Redis
) -> None:
    settings = replicated_settings(
        replicated.primary_url,
        replicated.replica_url,
        redis_url,
        database_read_max_lag_seconds=0.5,
    )
    await replayed_everything(replicated)  # else an earlier test's writes may count as lag
    async with serving(settings, redis) as client:
        await wait_for_replica(client, "up")
        lagging = await metric(client, "db_read_fallbacks_total", reason="lagging")
        async with replay_paused(replicated.replica_url):
            department = await insert_on_primary(replicated.primary_url, "Past the bound")
            entry = await wait_for_replica(client, "lagging")
            assert entry["lag_seconds"] is None or entry["lag_seconds"] > 0.5

            read = await client.get(f"{DEPARTMENTS}/{department}", headers=replicated.headers)

            assert read.status_code == 200, read.text
        assert await metric(client, "db_read_fallbacks_total", reason="lagging") == lagging + 1
        await wait_for_replica(client, "up")


async def test_a_stopped_replica_leaves_reads_to_the_primary_without_errors(
    replicated: Replicated, redis_url: str, redis: Redis
) -> None:
    # A second app that polls rarely: its first read after the stop still picks the
    # replica, fails on it and is served again from the primary.
    rarely = await polling_rarely(replicated, redis_url)
    client = replicated.client
    async with serving(rarely, redis) as unaware:
        await wait_for_replica(unaware, "up")
        assert (await unaware.get(DEPARTMENTS, headers=replicated.headers)).status_code == 200
        down = await metric(client, "db_read_fallbacks_total", reason="down")
        replicated.replica.stop()
        try:
            retried = await unaware.get(DEPARTMENTS, headers=replicated.headers)
            assert retried.status_code == 200, retried.text
            assert await metric(client, "db_read_fallbacks_total", reason="down") == down + 1

            reads = [await client.get(DEPARTMENTS, headers=replicated.headers) for _ in range(3)]
            assert [read.status_code for read in reads] == [200, 200, 200]
            assert await metric(client, "db_read_fallbacks_total", reason="down") >= down + 4

            entry = await wait_for_replica(client, "down")
            assert entry["lag_seconds"] is None
            ready = await client.get("/api/v1/ready")
            assert (ready.status_code, ready.json()["status"]) == (200, "ok")
            lag = await metric(client, "db_replica_lag_seconds", replica=entry["name"])
            assert lag == float("inf")
        finally:
            replicated.replica.start()
    await wait_for_replica(client, "up")
    await replayed_everything(replicated)  # the next test starts with a replica caught up


async def test_a_routed_read_sends_the_statements_of_an_unrouted_one(
    replicated: Replicated, redis_url: str, redis: Redis
) -> None:
    client, headers = replicated.client, replicated.headers
    department = await insert_on_primary(replicated.primary_url, "Counted")
    url = f"{DEPARTMENTS}/{department}"
    await wait_for_replica(client, "up")
    for _ in range(WAIT_STEPS):  # replayed, so the routed read is served by the replica
        if (await client.get(url, headers=headers)).status_code == 200:
            break
        await asyncio.sleep(0.05)
    plain = make_settings(database_url=replicated.primary_url, redis_url=redis_url)
    async with serving(plain, redis) as unrouted:
        await unrouted.get(url, headers=headers)  # warm: the permission cache, the pool
        with count_statements() as direct:
            assert (await unrouted.get(url, headers=headers)).status_code == 200
        written = await unrouted.post(DEPARTMENTS, headers=headers, json={"name": "Unrouted"})
        assert written.status_code == 201, written.text
        # Without replicas nothing is added to a write's response.
        assert READ_AFTER_HEADER.lower() not in written.headers
        assert "set-cookie" not in written.headers

    with count_statements() as routed:
        assert (await client.get(url, headers=headers)).status_code == 200

    # The poll of the routed app runs meanwhile, and is no part of either read.
    assert without_polls(routed) == without_polls(direct)
    assert len(without_polls(direct)) >= 1


def without_polls(statements: list[str]) -> list[str]:
    polls = ("pg_last_wal_replay_lsn", "pg_current_wal_flush_lsn", "pg_current_wal_insert_lsn")
    return [statement for statement in statements if not any(p in statement for p in polls)]
