"""Prometheus metrics of the application, correct with one worker or many.

With `PROMETHEUS_MULTIPROC_DIR` set (`python -m app serve` sets it for several workers),
each worker writes its samples to files there and a scrape aggregates them: counters and
histograms add up, gauges combine as their `multiprocess_mode` says (`livesum`: the sum
over the workers that are alive). The `process_atlas_worker_*` gauges carry each worker's pid,
so they add up nothing: every live worker has its own series, gone when the worker is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.exposition import choose_encoder
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

logger = logging.getLogger("app.metrics")

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_SECONDS = 1.0
# Gauges counted in PostgreSQL are recounted at most this often per worker, and only when
# a scrape asks; a scrape waits at most DATABASE_SAMPLE_WAIT_SECONDS for a count.
DATABASE_SAMPLE_SECONDS = 60.0
DATABASE_SAMPLE_WAIT_SECONDS = 5.0

# `_created` series exist only in single-process mode; leave them out in both.
disable_created_metrics()  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending its last byte, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being served, by method and route template.",
    ["method", "route"],
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "db_pool_size",
    "Connections each pool keeps open (DB_POOL_SIZE), summed over workers.",
    multiprocess_mode="livesum",
)
DB_POOL_MAX_OVERFLOW = Gauge(
    "db_pool_max_overflow",
    "Connections each pool may open beyond its size (DB_MAX_OVERFLOW), summed over workers.",
    multiprocess_mode="livesum",
)
DB_POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out",
    "Pooled connections in use, summed over workers.",
    multiprocess_mode="livesum",
)
DB_POOL_OVERFLOW = Gauge(
    "db_pool_overflow",
    "Connections open beyond the pool size, summed over workers.",
    multiprocess_mode="livesum",
)
DB_QUERY_DURATION = Histogram(
    "db_query_duration_seconds",
    "Time PostgreSQL took to answer a statement, by operation.",
    ["operation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# Read replicas (DATABASE_READ_URL; app/core/replicas.py): only counted when configured.
DB_READS = Counter(
    "db_reads_total",
    "GET and HEAD requests that opened a database session, by target (primary, replica).",
    ["target"],
)
DB_READ_FALLBACKS = Counter(
    "db_read_fallbacks_total",
    "Reads sent to the primary instead of a replica, by reason (lagging, down, "
    "behind_client, conflict).",
    ["reason"],
)
DB_REPLICA_LAG = Gauge(
    "db_replica_lag_seconds",
    "How far each replica is behind the primary at the last check (+Inf: down or unknown), "
    "the largest over workers.",
    ["replica"],
    multiprocess_mode="livemax",
)
DEPENDENCY_UP = Gauge(
    "app_dependency_up",
    "1 when the dependency answered the last check (at most one per 5 s per worker), else 0.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)
RATE_LIMITED = Counter(
    "rate_limited_requests_total",
    "Requests refused with 429 by the rate limiter, by route group.",
    ["group"],
)
RATE_LIMITER_ERRORS = Counter(
    "rate_limiter_errors_total",
    "Requests the rate limiter let through unchecked because Redis was unreachable.",
)
REDIS_UNREPLICATED_REVOCATIONS = Counter(
    "redis_unreplicated_revocations_total",
    "Revocations no Redis replica acknowledged in time: a failover may drop them.",
)
AUTH_EVENTS = Counter(
    "auth_events_total",
    "Authentication events: login_success, login_failure, refresh, reuse_detected, logout.",
    ["event"],
)
# Series that exist from start-up, so the first event shows as an increase, not as a new
# series that rate() cannot see.
for _event in ("login_success", "login_failure", "refresh", "reuse_detected", "logout"):
    AUTH_EVENTS.labels(_event)
AUDIT_EVENTS = Counter(
    "audit_events_total",
    "Audit events written, by entity type and action.",
    ["entity_type", "action"],
)
PROCESSES_REVIEW_OVERDUE = Gauge(
    "process_atlas_processes_review_overdue",
    "Processes whose review is overdue, by criticality (counted at most once a minute).",
    ["criticality"],
    multiprocess_mode="livemostrecent",
)
APP_INFO = Gauge(
    "app_info",
    "Always 1; the version label names the running release.",
    ["version"],
    multiprocess_mode="max",
)

# Multiprocess mode labels `liveall` gauges with the pid of the worker that wrote them, and
# drops a worker's series when it is marked dead; a single process labels its own.
_PID_LABEL = () if os.environ.get(MULTIPROC_DIR_ENV) else ("pid",)
WORKER_RESIDENT_MEMORY = Gauge(
    "process_atlas_worker_resident_memory_bytes",
    "Resident memory of each worker process, by pid.",
    _PID_LABEL,
    multiprocess_mode="liveall",
)
WORKER_CPU = Gauge(
    "process_atlas_worker_cpu_seconds_total",
    "User and system CPU time each worker process has used, by pid (only grows: use rate()).",
    _PID_LABEL,
    multiprocess_mode="liveall",
)
WORKER_OPEN_FDS = Gauge(
    "process_atlas_worker_open_fds",
    "File descriptors each worker process has open, by pid.",
    _PID_LABEL,
    multiprocess_mode="liveall",
)
WORKER_START_TIME = Gauge(
    "process_atlas_worker_start_time_seconds",
    "When each worker process started, in seconds since the epoch, by pid.",
    _PID_LABEL,
    multiprocess_mode="liveall",
)

_QUERY_STARTS = "metrics_query_starts"
_QUERY_TIMES = {
    operation: DB_QUERY_DURATION.labels(operation)
    for operation in ("select", "insert", "update", "delete", "other")
}
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")
# Reads /proc/self when sampled, so it describes whichever process samples (each worker).
_THIS_PROCESS = ProcessCollector(registry=None)
_WORKER_GAUGES = {
    "process_resident_memory_bytes": WORKER_RESIDENT_MEMORY,
    "process_cpu_seconds": WORKER_CPU,
    "process_open_fds": WORKER_OPEN_FDS,
    "process_start_time_seconds": WORKER_START_TIME,
}


def instrument_engine(engine: AsyncEngine, *, max_overflow: int) -> None:
    """Time every statement the engine runs and publish its pool's limits."""
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", _statement_started)
    event.listen(sync_engine, "after_cursor_execute", _statement_finished)
    event.listen(sync_engine, "handle_error", _statement_failed)
    DB_POOL_MAX_OVERFLOW.set(max_overflow)
    sample_pool(engine)


def _statement_started(connection: Connection, *_: Any) -> None:
    connection.info.setdefault(_QUERY_STARTS, []).append(time.perf_counter())


def _statement_finished(connection: Connection, _cursor: Any, statement: str, *_: Any) -> None:
    _observe_statement(connection, statement)


def _statement_failed(context: ExceptionContext) -> None:
    if context.connection is not None and context.statement is not None:
        _observe_statement(context.connection, context.statement)


def _observe_statement(connection: Connection, statement: str) -> None:
    starts = connection.info.get(_QUERY_STARTS)
    if not starts:
        return
    elapsed = time.perf_counter() - starts.pop()
    histogram = _QUERY_TIMES.get(statement.lstrip()[:6].lower()) or _QUERY_TIMES["other"]
    histogram.observe(elapsed)


def sample_pool(engine: AsyncEngine) -> None:
    """Copy the pool's current size, use and overflow into the gauges."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return
    DB_POOL_SIZE.set(pool.size())
    DB_POOL_CHECKED_OUT.set(pool.checkedout())
    DB_POOL_OVERFLOW.set(max(0, pool.overflow()))


def sample_worker() -> None:
    """Copy this process's memory, CPU time, descriptors and start time into its pid's gauges."""
    for family in _THIS_PROCESS.collect():
        gauge = _WORKER_GAUGES.get(family.name)
        if gauge is not None:
            series = gauge.labels(str(os.getpid())) if _PID_LABEL else gauge
            series.set(family.samples[0].value)


# In multiprocess mode the gauges above exist from import on, at 0 until sampled: another
# worker answering a scrape would report this one with no memory and no start time.
sample_worker()


async def sample_periodically(engine: AsyncEngine) -> None:
    """Keep this worker's pool and process gauges fresh; a scrape reaches one worker, not all."""
    while True:
        sample_pool(engine)
        sample_worker()
        await asyncio.sleep(SAMPLE_SECONDS)


def multiprocess_dir() -> str | None:
    """The directory of multiprocess mode, or None in single-process mode."""
    return os.environ.get(MULTIPROC_DIR_ENV) or None


def render_latest(accept: str | None) -> tuple[bytes, str]:
    """Every worker's metrics (or this process's) in the format the scraper accepts."""
    registry = REGISTRY
    path = multiprocess_dir()
    if path:
        forget_dead_workers(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that died without shutting down (a crash, SIGKILL)."""
    pids = {
        int(match.group(1)) for name in os.listdir(path) if (match := _LIVE_GAUGE_FILE.match(name))
    }
    for pid in pids:
        if not _is_alive(pid):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def forget_this_worker() -> None:
    """On shutdown, take this worker out of the `live*` gauges."""
    path = multiprocess_dir()
    if path and Path(path).is_dir():
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    return True


class DatabaseSampler:
    """Runs `sample(engine)` at most once per `interval` seconds for each engine.

    For gauges that PostgreSQL counts: a scrape calls it, so a count runs only when someone
    scrapes, and never more often than `interval` however often they do. Callers that
    arrive while a count runs wait for it, for `max_wait` seconds at most (the count goes
    on, and the next scrape shows it); a count that fails is logged, leaves the gauges as
    they were and is tried again at the next call after `interval`. No reference to an
    engine is kept: its entry goes with it.
    """

    def __init__(
        self,
        sample: Callable[[AsyncEngine], Awaitable[None]],
        *,
        interval: float = DATABASE_SAMPLE_SECONDS,
        max_wait: float = DATABASE_SAMPLE_WAIT_SECONDS,
    ) -> None:
        self._sample = sample
        self.interval = interval
        self.max_wait = max_wait
        self._due: WeakKeyDictionary[AsyncEngine, float] = WeakKeyDictionary()
        self._running: WeakKeyDictionary[AsyncEngine, asyncio.Task[None]] = WeakKeyDictionary()

    async def refresh(self, engine: AsyncEngine) -> None:
        """Sample now if the last sample of `engine` is older than `interval`."""
        running = self._running.get(engine)
        if running is None and time.monotonic() >= self._due.get(engine, float("-inf")):
            self._due[engine] = time.monotonic() + self.interval
            running = self._running[engine] = asyncio.create_task(self._run(engine))
        if running is not None:
            # Shielded: a scrape that gives up does not cancel the count the others await.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.max_wait):
                    await asyncio.shield(running)

    async def _run(self, engine: AsyncEngine) -> None:
        try:
            await self._sample(engine)
        except Exception as error:
            name = getattr(self._sample, "__name__", "a database sample")
            logger.warning("metrics: %s failed (%s)", name, type(error).__name__)
        finally:
            self._running.pop(engine, None)
