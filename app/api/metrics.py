"""`GET /metrics`: Prometheus metrics of every worker, behind an optional bearer token."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.metrics import DEPENDENCY_UP, render_latest, sample_pool

logger = logging.getLogger("app.metrics")
router = APIRouter(tags=["metrics"])

METRICS_PATH = "/metrics"


@router.get(METRICS_PATH, include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics in the exposition format the scraper accepts."""
    settings: Settings = request.state.settings
    if settings.metrics_token is not None:
        _require_token(request, settings.metrics_token.get_secret_value())
    engine: AsyncEngine = request.state.engine
    await _record_dependencies(engine, request.state.redis, settings.ready_timeout)
    sample_pool(engine)
    body, content_type = render_latest(request.headers.get("accept"))
    return Response(body, media_type=content_type)


def _require_token(request: Request, expected: str) -> None:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Unauthorized("Metrics need the bearer token set in METRICS_TOKEN.")


async def _record_dependencies(engine: AsyncEngine, redis: Redis, limit: float) -> None:
    database, cache = await asyncio.gather(
        _answers(_select_one(engine), limit), _answers(redis.ping(), limit)
    )
    DEPENDENCY_UP.labels("database").set(database)
    DEPENDENCY_UP.labels("redis").set(cache)


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
