"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse

logger = logging.getLogger("app.health")
router = APIRouter(tags=["health"])

Status = Literal["up", "down"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    database: Status
    redis: Status


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
    """Readiness: PostgreSQL and Redis both answer within the readiness timeout."""
    timeout: float = request.state.settings.ready_timeout
    database, redis = await asyncio.gather(
        _check_database(request.state.engine, timeout), _check_redis(request.state.redis, timeout)
    )
    body = Readiness(
        status="ok" if database == redis == "up" else "unavailable", database=database, redis=redis
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)


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
