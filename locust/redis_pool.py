"""Client-side cost of one Redis GET through each kind of connection pool.

    valgrind --tool=callgrind .venv/bin/python locust/redis_pool.py KIND N

KIND is `plain` (redis-py's ConnectionPool), `blocking` (its BlockingConnectionPool) or
`bounded` (app.core.redis.BoundedConnectionPool). Run it twice with two values of N and
divide the difference of callgrind's instruction totals by the difference of N: the
instructions of one GET, start-up excluded (docs/benchmarks.md, change 16). Without
valgrind it prints the CPU time per GET, which a busy machine moves.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.redis import BoundedConnectionPool

POOLS: dict[str, tuple[type[ConnectionPool], dict[str, float]]] = {
    "plain": (ConnectionPool, {}),
    "blocking": (BlockingConnectionPool, {"timeout": 5}),
    "bounded": (BoundedConnectionPool, {"timeout": 5}),
}


async def main(kind: str, count: int) -> None:
    pool_class, options = POOLS[kind]
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    redis = Redis.from_pool(pool_class.from_url(url, max_connections=50, **options))
    await redis.get("pa-bench:missing")
    started = time.process_time()
    for _ in range(count):
        await redis.get("pa-bench:missing")
    elapsed = time.process_time() - started
    await redis.aclose()
    print(f"{kind}: {elapsed / count * 1e6:.1f} us CPU per GET over {count}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
