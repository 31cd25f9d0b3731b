"""What the edge middleware costs per request, measured in-process (no network, no server).

    .venv/bin/python docs/benchmarks/middleware_cost.py [--requests 5000] [--rounds 5]

Two tables. "Alone": each middleware around a no-op ASGI app that answers 200, so the
number is that middleware's own cost. "In the app": the real `create_app` with edge
settings switched off or on, serving a trivial route with a path parameter; the
difference to the bare variant is what the stack adds to a real request. The rate
limiter's cost includes one Redis round trip. Each figure is the best of the rounds (the
least disturbed by whatever else the machine runs).

Needs PostgreSQL (for the lifespan only; no query runs) and Redis: DATABASE_URL and
REDIS_URL, or the local defaults below. Access-log lines go to /dev/null as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import Environment, Settings
from app.core.logging import JsonFormatter
from app.core.middleware import (
    BodySizeLimitMiddleware,
    ObservabilityMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from app.core.problems import CatchAllMiddleware
from app.core.ratelimit import RateLimiter, RateLimitMiddleware
from app.core.routes import RouteIndex
from app.domains.auth.context import AuthContext
from app.main import create_app

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = "benchmark-secret-key-that-is-long-enough-0123456789"  # noqa: S105
PATH = "/api/v1/_bench/42"

ALL_OFF = {
    "metrics_enabled": False,
    "access_log_enabled": False,
    "security_headers_enabled": False,
    "max_body_bytes": 0,
    "rate_limit_enabled": False,
}
APP_VARIANTS: dict[str, dict[str, Any]] = {
    "bare (request id + catch-all only)": ALL_OFF,
    "+ metrics": {**ALL_OFF, "metrics_enabled": True},
    "+ access log": {**ALL_OFF, "access_log_enabled": True},
    "+ security headers": {**ALL_OFF, "security_headers_enabled": True},
    "+ body size limit": {**ALL_OFF, "max_body_bytes": 1024 * 1024},
    "+ rate limit": {**ALL_OFF, "rate_limit_enabled": True},
    "full stack": {},
}

Call = Callable[[], Awaitable[int]]


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": Environment.TEST,
        "secret_key": SECRET_KEY,
        "database_url": DATABASE_URL,
        "redis_url": REDIS_URL,
        "redis_key_prefix": f"pa-bench:{uuid.uuid4().hex[:8]}:",
        "rate_limit_default": "1000000000/second",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _caller(app: ASGIApp, state: dict[str, Any]) -> Call:
    headers = [(b"host", b"bench"), (b"accept", b"application/json")]

    async def call() -> int:
        status = 0
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(state),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    return call


async def _best_mean_us(call: Call, requests: int, rounds: int) -> float:
    for _ in range(min(500, requests)):
        assert await call() == 200
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            await call()
        best = min(best, (time.perf_counter() - started) / requests)
    return best * 1e6


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"y")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def alone(requests: int, rounds: int) -> None:
    settings = _settings(rate_limit_enabled=True)
    routes = RouteIndex(create_app(settings).router.routes)
    redis = Redis.from_url(REDIS_URL)
    callers = AuthContext.build(settings, redis).callers
    state = {"rate_limiter": RateLimiter(redis, callers=callers, key_prefix="pa-bench:")}
    wrapped: dict[str, ASGIApp] = {
        "no middleware": _ok,
        "request id": RequestIdMiddleware(_ok),
        "catch-all": CatchAllMiddleware(_ok),
        "metrics": ObservabilityMiddleware(_ok, routes=routes, log_requests=False),
        "access log": ObservabilityMiddleware(_ok, routes=routes, record_metrics=False),
        "security headers": SecurityHeadersMiddleware(_ok, docs_paths=["/docs"], hsts_max_age=1),
        "body size limit": BodySizeLimitMiddleware(_ok, max_bytes=1024 * 1024),
        "rate limit (Redis round trip)": RateLimitMiddleware(
            _ok, settings=settings, auth_prefix="/api/v1/auth/", exempt_paths=()
        ),
    }
    print("Alone, around a no-op app:\n")
    print("| middleware | µs per request |")
    print("|---|---:|")
    baseline = 0.0
    for name, app in wrapped.items():
        mean = await _best_mean_us(_caller(app, state), requests, rounds)
        baseline = baseline or mean
        print(f"| {name} | {mean - baseline:.1f} |")
    await redis.aclose()


async def in_the_app(requests: int, rounds: int) -> None:
    print(f"\nIn the app, GET {PATH} (a route with a path parameter):\n")
    print("| variant | µs per request | over bare |")
    print("|---|---:|---:|")
    baseline = 0.0
    for name, overrides in APP_VARIANTS.items():
        app = create_app(_settings(**overrides))

        @app.get("/api/v1/_bench/{item_id}")
        async def probe(item_id: int) -> dict[str, int]:
            return {"item_id": item_id}

        async with LifespanManager(app) as manager:
            call = _caller(manager.app, {})
            mean = await _best_mean_us(call, requests, rounds)
        baseline = baseline or mean
        print(f"| {name} | {mean:.1f} | {mean - baseline:+.1f} |")


async def main(requests: int, rounds: int) -> None:
    sink = logging.FileHandler(os.devnull)
    sink.setFormatter(JsonFormatter())
    logging.getLogger().handlers[:] = [sink]
    logging.getLogger().setLevel(logging.INFO)
    await alone(requests, rounds)
    await in_the_app(requests, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
