"""Benchmark-only variants of the application, to measure a change side by side.

`locust/compare.py` and `locust/bench.py --experiments` serve `variants:create_app` with
`EXPERIMENTS` naming the changes to apply on top of the real application
(comma-separated); none of this is used in production. Each experiment undoes one of the
hot-path changes recorded in docs/benchmarks.md, so that anyone can re-measure its
before and after on their machine:

- `no-heap-settle`: no `gc.freeze()` and default collector thresholds (change 8).
- `two-redis-round-trips`: the rate limiter does not read the token state along with its
  bucket, so the token check makes its own `MGET` (change 6): the lifespan's
  `rate_limiter` is built with callers that prefetch nothing.
- `transactional-reads`: GET requests run in a transaction (`BEGIN` ... `COMMIT`) as writes
  do, instead of in autocommit (change 19): the lifespan's `read_sessionmaker` is the
  transactional one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]

EXPERIMENTS = set(filter(None, os.environ.get("EXPERIMENTS", "").split(",")))
KNOWN = {"no-heap-settle", "two-redis-round-trips", "transactional-reads"}


def create_app() -> FastAPI:
    """The configured application with the experiments in `EXPERIMENTS` applied."""
    unknown = EXPERIMENTS - KNOWN
    if unknown:
        raise SystemExit(f"variants: unknown experiments {sorted(unknown)}; known: {sorted(KNOWN)}")
    from app import main

    if "no-heap-settle" in EXPERIMENTS:
        main.settle_startup_heap = lambda: None  # type: ignore[assignment]
    app = main.create_configured_app()
    if "two-redis-round-trips" in EXPERIMENTS:
        app.router.lifespan_context = _without_prefetch(app.router.lifespan_context)
    if "transactional-reads" in EXPERIMENTS:
        app.router.lifespan_context = _transactional_reads(app.router.lifespan_context)
    return app


def _transactional_reads(lifespan: Lifespan) -> Lifespan:
    """The same lifespan, with GET sessions in a transaction like every other request's."""

    @asynccontextmanager
    async def wrapped(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            state["read_sessionmaker"] = state["sessionmaker"]
            yield state

    return wrapped


def _without_prefetch(lifespan: Lifespan) -> Lifespan:
    """The same lifespan, with a rate limiter that reads nothing along with its buckets."""
    from app.core.ratelimit import RateLimiter
    from app.domains.auth.callers import TokenCallers
    from app.domains.auth.context import AuthContext

    @asynccontextmanager
    async def wrapped(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            auth: AuthContext = state["auth"]
            state["rate_limiter"] = RateLimiter(
                state["redis"],
                callers=TokenCallers(auth.tokens, auth.token_state, prefetch=False),
                key_prefix=auth.settings.redis_key_prefix,
            )
            yield state

    return wrapped
