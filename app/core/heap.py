"""Garbage-collector settings for a long-running server process."""

from __future__ import annotations

import gc

# CPython's default first threshold (700 allocations) runs a collection several times per
# list request; each one also walks objects that live as long as the process.
COLLECTION_THRESHOLDS = (10_000, 20, 20)


def settle_startup_heap() -> None:
    """Keep start-up objects out of every later collection, and collect less often.

    The framework, the ORM's mappers and compiled statements are hundreds of thousands of
    long-lived objects; `gc.freeze()` moves them to a generation no collection scans. A
    page of 100 processes then costs 28 % less CPU, and the thresholds save 9 % more
    (docs/benchmarks.md, change 8).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTION_THRESHOLDS)
