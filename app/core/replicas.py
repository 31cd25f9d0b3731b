"""Read replicas: what each worker knows of them, and which one a read may use.

With `DATABASE_READ_URL` set, the lifespan builds one `ReadRouting` per worker; the
request side (the read-after position, the per-request context, the retry on the primary)
is `app/core/read_after.py`. Without it neither exists (docs/scaling.md, "Read replicas").

- A read may use a replica that is up, at most `DATABASE_READ_MAX_LAG_SECONDS` behind, and
  whose replay position has passed the client's read-after position. The check uses this
  worker's cached positions, so the common read costs no query; only a client ahead of
  every cached position costs one, on the most advanced replica.
- Lag: a poll samples the primary's WAL position, then each replica's replay position. A
  replica holds everything the primary had at the time of the newest sample at or below its
  replay position; its lag is the time since then. That is exact on an idle primary (no
  replay timestamp that ages while nothing happens) and grows while the primary cannot be
  sampled.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.database import (
    async_url,
    create_engine,
    create_sessionmaker,
    reads_in_autocommit,
)
from app.core.metrics import DB_READ_FALLBACKS, DB_READS, DB_REPLICA_LAG

logger = logging.getLogger("app.replicas")

SessionMaker = async_sessionmaker[AsyncSession]

# `pg_current_wal_insert_lsn()` points past the page header when the last record ended on a
# page boundary; a replay position (the end of the last record replayed) points at the
# boundary. Header sizes (MAXALIGNed, 64-bit) and the default block size of PostgreSQL.
_PAGE_HEADERS = (24, 40)
_DEFAULT_WAL_BLOCK_SIZE = 8192
# The poll samples what the primary has flushed, all a replica can have: WAL inserted but not
# yet flushed (until the WAL writer's next round) would make a caught-up replica look behind.
_PRIMARY_POSITION = "SELECT pg_current_wal_flush_lsn()::text, current_setting('wal_block_size')"
_REPLAY_POSITION = "SELECT pg_last_wal_replay_lsn()::text"
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


class ReplicaState(StrEnum):
    UP = "up"
    LAGGING = "lagging"
    DOWN = "down"


class Fallback(StrEnum):
    """Why a read that could have gone to a replica went to the primary."""

    LAGGING = "lagging"  # every replica that answers is more than the lag bound behind
    DOWN = "down"  # no replica answers (or the one used lost its connection mid-read)
    BEHIND_CLIENT = "behind_client"  # none has replayed the client's last write yet
    CONFLICT = "conflict"  # replay cancelled the read on the replica (recovery conflict)


def parse_lsn(text: str | None) -> int | None:
    """`"16/B374D848"` -> its 64-bit position; None for anything else (never an error)."""
    if text is None:
        return None
    match = _LSN.fullmatch(text.strip())
    if match is None:
        return None
    return (int(match.group(1), 16) << 32) | int(match.group(2), 16)


def format_lsn(position: int) -> str:
    """A 64-bit WAL position as PostgreSQL writes it (`16/B374D848`)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def record_end(position: int, block_size: int = _DEFAULT_WAL_BLOCK_SIZE) -> int:
    """An insert position as a replay position would name it: a page boundary, not past its header.

    No record ends inside a page header, so a replica at the boundary has every record the
    primary had: without this, a caught-up replica of an idle primary would look behind.
    """
    offset = position % block_size
    return position - offset if offset in _PAGE_HEADERS else position


def replica_failure(error: BaseException) -> Fallback | None:
    """Whether a read that raised `error` on a replica may run again on the primary, and why."""
    if isinstance(error, sa_exc.DBAPIError):
        state = str(getattr(error.orig, "sqlstate", None) or "")
        if state in {"40001", "40P01"}:
            # On a standby a read never collides with a writer: replay cancelled it.
            return Fallback.CONFLICT
        if state == "57014":
            return None  # the statement timeout: the primary would be as slow
        if error.connection_invalidated or state.startswith(("08", "57")):
            return Fallback.DOWN
        return Fallback.DOWN if isinstance(error, sa_exc.InterfaceError) else None
    connection_errors = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
    return Fallback.DOWN if isinstance(error, connection_errors) else None


async def _fetch(engine: AsyncEngine, sql: str) -> tuple[Any, ...]:
    """One row in one round trip, on a pooled connection but straight through asyncpg.

    No BEGIN and no ROLLBACK around it, and none of SQLAlchemy's statement machinery: about
    half the CPU of an autocommit `exec_driver_sql` (docs/scaling.md). A connection that
    fails or is interrupted here leaves the pool instead of going back to it.
    """
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None, "a checked-out connection has its driver's"
        try:
            row = await driver.fetchrow(sql)
        except BaseException:
            await connection.invalidate()
            raise
        return tuple(row)


class Replica:
    """One replica's engine and what this worker last learnt of it."""

    def __init__(self, name: str, engine: AsyncEngine, *, autocommit: bool = True) -> None:
        self.name = name
        self.engine = engine
        self.sessionmaker = create_sessionmaker(engine, autocommit=autocommit)
        self.reachable = False
        self.problem = "not checked yet"
        self.replayed = -1
        # The monotonic time of the newest primary state the replica is known to hold.
        self.current_as_of = -math.inf
        self.reported = ReplicaState.DOWN
        self.pending_check: asyncio.Task[int | None] | None = None

    def forget_check(self, _: asyncio.Task[int | None]) -> None:
        """The live check is over: the next one asks the replica again."""
        self.pending_check = None

    def lag(self, now: float) -> float:
        """Seconds behind the primary, at most (inf: unknown)."""
        return now - self.current_as_of

    def state(self, now: float, max_lag: float) -> ReplicaState:
        if not self.reachable:
            return ReplicaState.DOWN
        return ReplicaState.LAGGING if self.lag(now) > max_lag else ReplicaState.UP


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """A replica as readiness reports it."""

    name: str
    status: ReplicaState
    lag_seconds: float | None


class ReadRouting:
    """The replicas of one worker: their cached positions, the poll, and the choice per read."""

    def __init__(
        self,
        *,
        primary: AsyncEngine,
        primary_sessionmaker: SessionMaker,
        primary_read_sessionmaker: SessionMaker,
        replicas: list[Replica],
        max_lag: float,
        poll_seconds: float,
        timeout: float,
    ) -> None:
        self.primary = primary
        self.primary_sessionmaker = primary_sessionmaker
        self.primary_read_sessionmaker = primary_read_sessionmaker
        self.replicas = replicas
        self.max_lag = max_lag
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        # A read uses a replica only while it holds what the primary had `max_lag` seconds
        # ago: a client's position older than this is held by every replica a read may use
        # (the poll interval and a second are margin).
        self.cookie_max_age = math.ceil(max_lag + poll_seconds) + 1
        self._samples: deque[tuple[float, int]] = deque()
        self._keep_samples = max_lag + 2 * poll_seconds
        self._block_size = _DEFAULT_WAL_BLOCK_SIZE
        self._primary_answers = True
        self._turn = itertools.count()
        self._refreshing: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._primary_reads = DB_READS.labels("primary")
        self._replica_reads = DB_READS.labels("replica")
        self._fallbacks = {reason: DB_READ_FALLBACKS.labels(reason.value) for reason in Fallback}

    @classmethod
    def build(
        cls,
        settings: Settings,
        primary: AsyncEngine,
        primary_sessionmaker: SessionMaker,
        primary_read_sessionmaker: SessionMaker,
    ) -> ReadRouting | None:
        """The worker's routing for DATABASE_READ_URL, or None when no replica is configured."""
        if not settings.database_read_url:
            return None
        replicas = [
            Replica(
                _replica_name(url),
                create_engine(settings, url),
                autocommit=reads_in_autocommit(settings),
            )
            for url in settings.database_read_url
        ]
        return cls(
            primary=primary,
            primary_sessionmaker=primary_sessionmaker,
            primary_read_sessionmaker=primary_read_sessionmaker,
            replicas=replicas,
            max_lag=settings.database_read_max_lag_seconds,
            poll_seconds=settings.database_read_poll_seconds,
            timeout=settings.ready_timeout,
        )

    def start(self) -> None:
        """Poll the replicas in the background; reads use the primary until the first poll."""
        self._poller = asyncio.create_task(self._poll())

    async def close(self) -> None:
        """Stop the poll and any check in flight; close the replicas' pools."""
        checks = [self._poller, self._refreshing, *(r.pending_check for r in self.replicas)]
        running = [check for check in checks if check is not None]
        for check in running:
            check.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for replica in self.replicas:
            await replica.engine.dispose()

    async def _poll(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                # Never the end of the poll: without it every replica would age into "lagging".
                logger.exception("replicas: the poll failed")
            await asyncio.sleep(self.poll_seconds)

    async def refresh(self) -> None:
        """Check the primary's position, then every replica's; callers meanwhile share one check."""
        if self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh())
        # Shielded: a readiness probe that gives up does not cancel the poll's check.
        await asyncio.shield(self._refreshing)

    async def _refresh(self) -> None:
        try:
            await self._sample_primary()
            await asyncio.gather(*(self._check(replica) for replica in self.replicas))
            self._publish(time.monotonic())
        finally:
            self._refreshing = None

    async def _sample_primary(self) -> None:
        # The time before the query: the position read is at least the one at that time.
        sampled_at = time.monotonic()
        position = await self._primary_position()
        if position is None:
            return  # lag keeps growing until the primary answers again
        self._samples.append((sampled_at, position))
        while len(self._samples) > 1 and self._samples[0][0] < sampled_at - self._keep_samples:
            self._samples.popleft()

    async def _primary_position(self) -> int | None:
        try:
            async with asyncio.timeout(self.timeout):
                row = await _fetch(self.primary, _PRIMARY_POSITION)
        except Exception as error:
            if self._primary_answers:  # once per outage, not at every poll
                logger.warning(
                    "replicas: the primary's WAL position is unknown (%s)", type(error).__name__
                )
            self._primary_answers = False
            return None
        self._primary_answers = True
        self._block_size = int(row[1])
        position = parse_lsn(row[0])
        return None if position is None else record_end(position, self._block_size)

    async def _check(self, replica: Replica) -> None:
        replayed = await self._replay_position(replica)
        if replayed is not None:
            self._observe(replica, replayed)

    async def _replay_position(self, replica: Replica) -> int | None:
        """The replica's replay position now; None (and the replica marked down) if it fails."""
        try:
            async with asyncio.timeout(self.timeout):
                row = await _fetch(replica.engine, _REPLAY_POSITION)
        except Exception as error:
            self.mark_down(replica, type(error).__name__)
            return None
        replayed = parse_lsn(row[0])
        if replayed is None:
            self.mark_down(replica, "not in recovery: not a streaming replica")
        return replayed

    def _observe(self, replica: Replica, replayed: int) -> None:
        replica.reachable = True
        replica.problem = ""
        replica.replayed = replayed
        replica.current_as_of = next(
            (at for at, position in reversed(self._samples) if position <= replayed), -math.inf
        )

    def mark_down(self, replica: Replica, problem: str) -> None:
        """Use the replica no more until a check reaches it again."""
        replica.reachable = False
        replica.problem = problem

    def _publish(self, now: float) -> None:
        """Set the lag gauges; log each replica whose state changed."""
        for replica in self.replicas:
            state = replica.state(now, self.max_lag)
            lag = replica.lag(now)
            DB_REPLICA_LAG.labels(replica.name).set(
                lag if state is not ReplicaState.DOWN else math.inf
            )
            if state is not replica.reported:
                log = logger.info if state is ReplicaState.UP else logger.warning
                log(
                    "replica %s is %s",
                    replica.name,
                    state.value,
                    extra={
                        "lag_seconds": None if math.isinf(lag) else round(lag, 3),
                        "problem": replica.problem,
                    },
                )
                replica.reported = state

    def statuses(self) -> list[ReplicaStatus]:
        """Each replica's state and lag as of now (from the last check)."""
        now = time.monotonic()
        return [
            ReplicaStatus(
                name=replica.name,
                status=(state := replica.state(now, self.max_lag)),
                lag_seconds=(
                    None
                    if state is ReplicaState.DOWN or math.isinf(replica.lag(now))
                    else round(replica.lag(now), 3)
                ),
            )
            for replica in self.replicas
        ]

    async def choose(self, after: int | None) -> tuple[SessionMaker, Replica | None]:
        """A read's sessionmaker and replica: one that has replayed `after`, else the primary."""
        now = time.monotonic()
        usable: list[Replica] = []
        lagging = False
        for replica in self.replicas:
            state = replica.state(now, self.max_lag)
            if state is ReplicaState.UP:
                usable.append(replica)
            lagging = lagging or state is ReplicaState.LAGGING
        if not usable:
            return self.on_primary(Fallback.LAGGING if lagging else Fallback.DOWN), None
        if after is not None:
            caught_up = [replica for replica in usable if replica.replayed >= after]
            if not caught_up:
                best = max(usable, key=lambda replica: replica.replayed)
                reason = await self._live_check(best, after)
                if reason is not None:
                    return self.on_primary(reason), None
                caught_up = [best]
            usable = caught_up
        replica = usable[next(self._turn) % len(usable)]
        self._replica_reads.inc()
        return replica.sessionmaker, replica

    async def _live_check(self, replica: Replica, after: int) -> Fallback | None:
        """Ask the replica whether it has replayed `after` (concurrent askers share one query)."""
        check = replica.pending_check
        if check is None:
            check = replica.pending_check = asyncio.create_task(self._replay_position(replica))
            check.add_done_callback(replica.forget_check)
        replayed = await asyncio.shield(check)
        if replayed is None:
            return Fallback.DOWN
        self._observe(replica, replayed)
        return None if replayed >= after else Fallback.BEHIND_CLIENT

    def on_primary(self, reason: Fallback | None = None) -> SessionMaker:
        """The primary's sessionmaker for a read, counted (and why, when a replica was wanted)."""
        self._primary_reads.inc()
        if reason is not None:
            self._fallbacks[reason].inc()
        return self.primary_read_sessionmaker

    def retried(self, reason: Fallback) -> None:
        """Count a read that failed on a replica and runs again on the primary."""
        self._fallbacks[reason].inc()

    async def position_after_commit(self) -> str | None:
        """The primary's WAL position now, which a replica must pass to hold what just committed."""
        position = await self._primary_position()
        return None if position is None else format_lsn(position)


def _replica_name(url: str) -> str:
    """`host:port/database` of a replica URL: its label in logs, metrics and readiness."""
    parsed = async_url(url)
    host = parsed.host or str(parsed.query.get("host", "")) or "localhost"
    return f"{host}:{parsed.port or 5432}/{parsed.database or ''}"
