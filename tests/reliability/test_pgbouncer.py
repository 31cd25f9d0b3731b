"""The app through PgBouncer in transaction pooling mode, with and without prepared statements.

PgBouncer 1.21 and later track protocol-level named prepared statements per client and
prepare them on whichever server connection runs them (`max_prepared_statements`), so
`DB_PGBOUNCER_PREPARED_STATEMENTS=true` may keep asyncpg's named statements. Each test
starts its own PgBouncer (`make pgbouncer` builds one from Debian's source into
.data/pgbouncer) on a spare loopback port in front of this test process's database, with
two server connections for up to eight client connections of the app, so clients share
server connections. Load is bounded: a fixed number of requests from a fixed number of tasks.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from httpx import AsyncClient, Response

from app.core.config import PROJECT_ROOT
from tests.conftest import make_settings
from tests.factories import Factory
from tests.reliability.conftest import serve
from tests.reliability.servers import PgBouncer, running_pgbouncer
from tests.statements import count_statements

pytestmark = pytest.mark.slow

BUILT = PROJECT_ROOT / ".data" / "pgbouncer" / "bin" / "pgbouncer"
SERVER_CONNECTIONS = 2  # PgBouncer's default_pool_size: the app's clients share these
# Up to 8 client connections, kept open (an overflow connection would reconnect and parse anew).
APP_POOL = {"db_pool_size": 8, "db_max_overflow": 0}
TASKS = 8
ROUNDS = 8  # per task: a create with links, a read by id, a page of 100 with links
PREPARED_STATEMENT_ERRORS = ("prepared statement", "bind message supplies")


def _version(binary: str) -> tuple[int, int] | None:
    """(major, minor) that `binary --version` reports, or None when it does not run."""
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return None
    words = result.stdout.split()
    if len(words) < 2 or words[0] != "PgBouncer":
        return None
    major, minor, *_ = (int(part) for part in words[1].split(".") if part.isdigit())
    return major, minor


@pytest.fixture(scope="module")
def pgbouncer_binary() -> str:
    """PgBouncer 1.21 or later: the one `make pgbouncer` built, else one on PATH."""
    for candidate in (str(BUILT), shutil.which("pgbouncer")):
        if candidate and (_version(candidate) or (0, 0)) >= (1, 21):
            return candidate
    pytest.skip(
        "needs PgBouncer >= 1.21 (max_prepared_statements); Debian bookworm's is 1.18: "
        "run `make pgbouncer` to build one into .data/pgbouncer (about 20 s)"
    )


# --- the workload ----------------------------------------------------------------------


@pytest.fixture
async def links(factory: Factory) -> dict[str, list[int]]:
    """Two departments, locations, resources and roles each process links to."""
    return {
        "department_ids": [(await factory.department()).id for _ in range(2)],
        "location_ids": [(await factory.location()).id for _ in range(2)],
        "resource_ids": [(await factory.resource()).id for _ in range(2)],
        "role_ids": [(await factory.role()).id for _ in range(2)],
    }


async def _one_task(
    client: AsyncClient, headers: dict[str, str], links: dict[str, list[int]], task: int
) -> list[Response]:
    responses = []
    for round_ in range(ROUNDS):
        created = await client.post(
            "/api/v1/processes",
            headers=headers,
            json={"title": f"Through PgBouncer {task}.{round_}", **links},
        )
        responses.append(created)
        if created.status_code == 201:
            process_id = created.json()["id"]
            responses.append(await client.get(f"/api/v1/processes/{process_id}", headers=headers))
        responses.append(await client.get("/api/v1/processes?limit=100", headers=headers))
    return responses


async def _load(
    client: AsyncClient, headers: dict[str, str], links: dict[str, list[int]]
) -> list[Response]:
    """TASKS tasks at once, each ROUNDS of create, read and list: every response, in order."""
    per_task = await asyncio.gather(
        *(_one_task(client, headers, links, task) for task in range(TASKS))
    )
    return [response for responses in per_task for response in responses]


def _failures(responses: list[Response]) -> Counter[str]:
    return Counter(
        f"{response.request.method} {response.status_code}: {response.text[:200]}"
        for response in responses
        if response.status_code >= 300
    )


@asynccontextmanager
async def _app_through(
    bouncer: PgBouncer, redis_url: str, *, prepared_statements: bool
) -> AsyncIterator[AsyncClient]:
    settings = make_settings(
        database_url=bouncer.url("atlas"),
        redis_url=redis_url,
        db_pgbouncer=True,
        db_pgbouncer_prepared_statements=prepared_statements,
        db_pool_timeout=30,  # a slow machine queues; a 503 here would hide what we test
        rate_limit_enabled=False,
        **APP_POOL,
    )
    async with serve(settings) as client:
        yield client


async def _server_prepared_statements(bouncer: PgBouncer) -> list[asyncpg.Record]:
    """pg_prepared_statements of the server connection PgBouncer lends this probe."""
    connection = await asyncpg.connect(
        host="127.0.0.1", port=bouncer.port, user="postgres", database="atlas",
        statement_cache_size=0,
    )  # fmt: skip
    try:
        # One transaction: PgBouncer keeps the same server connection for all of it.
        async with connection.transaction():
            rows: list[asyncpg.Record] = await connection.fetch(
                "SELECT name, statement, generic_plans + custom_plans AS executions "
                "FROM pg_prepared_statements"
            )
            return rows
    finally:
        await connection.close()


# --- the tests -------------------------------------------------------------------------


async def test_prepared_statements_through_pgbouncer_are_prepared_once_and_shared(
    pgbouncer_binary: str,
    database_url: str,
    redis_url: str,
    admin_headers: dict[str, str],
    links: dict[str, list[int]],
) -> None:
    with running_pgbouncer(
        pgbouncer_binary,
        database_url,
        max_prepared_statements=200,
        server_connections=SERVER_CONNECTIONS,
    ) as bouncer:
        async with _app_through(bouncer, redis_url, prepared_statements=True) as client:
            with count_statements() as statements:
                responses = await _load(client, admin_headers, links)
            clients = [row for row in bouncer.admin("SHOW CLIENTS") if row["database"] == "atlas"]
            servers = [row for row in bouncer.admin("SHOW SERVERS") if row["database"] == "atlas"]
            stats = bouncer.stats("atlas")
            prepared = await _server_prepared_statements(bouncer)

    assert not _failures(responses), _failures(responses)
    assert len(responses) == TASKS * ROUNDS * 3
    for text in PREPARED_STATEMENT_ERRORS:
        assert text not in bouncer.log()

    # Server connections were shared: more app connections than server connections.
    assert len(servers) <= SERVER_CONNECTIONS < len(clients), (clients, servers)
    # Statements were prepared and reused: each client connection parsed a statement once
    # (at most 8 x the few distinct statements), each server connection prepared it once, and
    # every execution was a bind of a prepared statement. Without the setting every execution
    # is a parse (the next test).
    assert stats["total_bind_count"] >= len(statements)
    assert stats["total_client_parse_count"] * 2 < stats["total_bind_count"], stats
    assert stats["total_server_parse_count"] * 10 < stats["total_bind_count"], stats
    assert stats["total_server_parse_count"] <= stats["total_client_parse_count"], stats
    assert sum(int(row["prepared_statements"]) for row in servers) > 0, servers
    # PostgreSQL's side: PgBouncer's names, run many times on one server connection.
    assert prepared
    assert all(row["name"].startswith("PGBOUNCER_") for row in prepared), prepared
    page = [row["executions"] for row in prepared if "FROM processes" in row["statement"]]
    assert max(page, default=0) > 1, prepared


@pytest.mark.parametrize("max_prepared_statements", [0, 200])
async def test_without_the_setting_pgbouncer_works_with_or_without_its_statement_tracking(
    pgbouncer_binary: str,
    database_url: str,
    redis_url: str,
    admin_headers: dict[str, str],
    links: dict[str, list[int]],
    max_prepared_statements: int,
) -> None:
    with running_pgbouncer(
        pgbouncer_binary,
        database_url,
        max_prepared_statements=max_prepared_statements,
        server_connections=SERVER_CONNECTIONS,
    ) as bouncer:
        async with _app_through(bouncer, redis_url, prepared_statements=False) as client:
            with count_statements() as statements:
                responses = await _load(client, admin_headers, links)
            stats = bouncer.stats("atlas")

    assert not _failures(responses), _failures(responses)
    assert len(responses) == TASKS * ROUNDS * 3
    for text in PREPARED_STATEMENT_ERRORS:
        assert text not in bouncer.log()
    if max_prepared_statements:
        # Every execution is parsed anew under a unique name: nothing is kept per client.
        assert stats["total_client_parse_count"] >= len(statements), stats
