"""Benchmark-only variants of the application, to measure a change side by side.

`locust/compare.py` and `locust/bench.py --experiments` serve `variants:create_app` with
`EXPERIMENTS` naming the changes to apply on top of the real application
(comma-separated); none of this is used in production. Each experiment undoes one of the
hot-path changes recorded in docs/benchmarks.md, so that anyone can re-measure its
before and after on their machine:

- `no-heap-settle`: no `gc.freeze()` and default collector thresholds (change 8).
- `two-redis-round-trips`: the rate limiter does not read the token state along with its
  bucket, so the token check makes its own `MGET` (change 6).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

EXPERIMENTS = set(filter(None, os.environ.get("EXPERIMENTS", "").split(",")))
KNOWN = {"no-heap-settle", "two-redis-round-trips"}


def create_app() -> FastAPI:
    """The configured application with the experiments in `EXPERIMENTS` applied."""
    unknown = EXPERIMENTS - KNOWN
    if unknown:
        raise SystemExit(f"variants: unknown experiments {sorted(unknown)}; known: {sorted(KNOWN)}")
    from app import main

    if "no-heap-settle" in EXPERIMENTS:
        main.settle_startup_heap = lambda: None  # type: ignore[assignment]
    if "two-redis-round-trips" in EXPERIMENTS:
        limiter = main.RateLimiter

        def without_token_state(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("token_state_keys", None)
            return limiter(*args, **kwargs)

        main.RateLimiter = without_token_state  # type: ignore[misc]
    return main.create_configured_app()
