"""`GET /metrics`: Prometheus metrics of every worker, behind an optional bearer token."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable
from weakref import WeakKeyDictionary

from fastapi import APIRouter, Request, Response
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.metrics import DEPENDENCY_UP, DatabaseSampler, render_latest, sample_pool
from app.domains.process.queries import refresh_review_gauge

logger = logging.getLogger("app.metrics")
router = APIRouter(tags=["metrics"])

METRICS_PATH = "/metrics"
# Scrapes, however many, reach PostgreSQL and Redis at most once per this many seconds.
PROBE_MAX_AGE_SECONDS = 5.0
# One dependency probe per engine: per worker and per application lifespan. The probe keeps
# no reference to the engine, so the entry goes with it.
_probes: WeakKeyDictionary[AsyncEngine, DependencyProbe] = WeakKeyDictionary()
# Overdue reviews by criticality: one count per worker at most once a minute, when scraped.
_review_counts = DatabaseSampler(refresh_review_gauge)


@router.get(METRICS_PATH, include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the exposition format the scraper accepts."""
    settings: Settings = request.state.settings
    if settings.metrics_token is not None:
        _require_token(request, settings.metrics_token.get_secret_value())
    engine: AsyncEngine = request.state.engine
    probe = _probes.get(engine)
    if probe is None:
        probe = _probes[engine] = DependencyProbe(timeout=settings.ready_timeout)
    for dependency, up in (await probe.results(engine, request.state.redis)).items():
        DEPENDENCY_UP.labels(dependency).set(up)
    await _review_counts.refresh(engine)
    sample_pool(engine)
    body, content_type = render_latest(request.headers.get("accept"))
    return Response(body, media_type=content_type)


def _require_token(request: Request, expected: str) -> None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Unauthorized("Metrics need the bearer token set in METRICS_TOKEN.")


class DependencyProbe:
    """Whether PostgreSQL and Redis answer, checked at most once per `max_age` seconds.

    Scrapes that arrive while a check runs wait for that check instead of starting their own.
    """

    def __init__(self, *, timeout: float, max_age: float = PROBE_MAX_AGE_SECONDS) -> None:
        self.timeout = timeout
        self.max_age = max_age
        self._results: dict[str, int] = {}
        self._fresh_until = float("-inf")
        self._running: asyncio.Task[None] | None = None

    async def results(self, engine: AsyncEngine, redis: Redis) -> dict[str, int]:
        """1 or 0 per dependency, from the last check if it is recent enough."""
        if self._running is None and time.monotonic() >= self._fresh_until:
            self._running = asyncio.create_task(self._check(engine, redis))
        if self._running is not None:
            # Shielded: a scrape that gives up does not cancel the check the others await.
            await asyncio.shield(self._running)
        return self._results

    async def _check(self, engine: AsyncEngine, redis: Redis) -> None:
        try:
            database, cache = await asyncio.gather(
                _answers(_select_one(engine), self.timeout),
                _answers(redis.ping(), self.timeout),
            )
            self._results = {"database": database, "redis": cache}
            self._fresh_until = time.monotonic() + self.max_age
        finally:
            self._running = None


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _answers(check: Awaitable[object], limit: float) -> int:
    try:
        async with asyncio.timeout(limit):
            await check
    except Exception as error:
        logger.warning("metrics: dependency check failed (%s)", type(error).__name__)
        return 0
    return 1
