"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse

from app.core.replicas import ReadRouting, ReplicaState

logger = logging.getLogger("app.health")
router = APIRouter(tags=["health"])

Status = Literal["up", "down"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReplicaReadiness(BaseModel):
    """A read replica (DATABASE_READ_URL): its state and lag never make the service unready."""

    name: str
    status: ReplicaState
    lag_seconds: float | None


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Status
    redis: Status
    # Only with DATABASE_READ_URL: each replica, up, lagging or down (reads then use the primary).
    replicas: list[ReplicaReadiness] | None = None


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers; touches nothing else."""
    return Health()


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A dependency is down."}},
)
async def ready(request: Request) -> JSONResponse:
    """Readiness: PostgreSQL and Redis both answer within the readiness timeout.

    Read replicas are reported, checked afresh, but a replica down or lagging leaves the
    service ready: its reads go to the primary.
    """
    timeout: float = request.state.settings.ready_timeout
    routing: ReadRouting | None = request.state.read_routing
    database, redis, replicas = await asyncio.gather(
        _check_database(request.state.engine, timeout),
        _check_redis(request.state.redis, timeout),
        _check_replicas(routing, timeout),
    )
    body = Readiness(
        status="ok" if database == redis == "up" else "unavailable",
        database=database,
        redis=redis,
        replicas=replicas,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=routing is None),
        status_code=200 if body.status == "ok" else 503,
    )


async def _check_replicas(
    routing: ReadRouting | None, limit: float
) -> list[ReplicaReadiness] | None:
    if routing is None:
        return None
    # A check that outlasts the probe goes on in the background; this answer uses the last.
    with suppress(TimeoutError):
        async with asyncio.timeout(limit):
            await routing.refresh()
    return [
        ReplicaReadiness(name=replica.name, status=replica.status, lag_seconds=replica.lag_seconds)
        for replica in routing.statuses()
    ]


async def _check_database(engine: AsyncEngine, limit: float) -> Status:
    try:
        async with asyncio.timeout(limit), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:
        logger.warning("readiness: database down (%s)", type(error).__name__)
        return "down"
    return "up"


async def _check_redis(redis: Redis, limit: float) -> Status:
    try:
        async with asyncio.timeout(limit):
            await redis.ping()
    except Exception as error:
        logger.warning("readiness: redis down (%s)", type(error).__name__)
        return "down"
    return "up"
