"""CPU of the database part of GET process by id, in-process: session, read, commit.

    .venv/bin/python locust/db_path.py [--database NAME] [--reads 1500]

No HTTP, no other layer: what `process_queries.read` inside a request's session costs
this process, with `DB_POOL_PRE_PING` on and off (best and median of 3 rounds). Steadier
than any load test on a shared machine, so it is how the hot-path changes of
docs/benchmarks.md were measured; to compare with another version of the code, run it
with `PYTHONPATH=/path/to/a/copy` whose `app/` shadows the project's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench


async def measure(url: str, reads: int) -> list[str]:
    from app.core.config import Settings
    from app.core.database import create_engine, create_sessionmaker
    from app.domains.process import queries as process_queries

    lines = [
        "| DB_POOL_PRE_PING | CPU us per read (best of 3) | median | wall us |",
        "| --- | ---: | ---: | ---: |",
    ]
    for pre_ping in (True, False):
        engine = create_engine(Settings(database_url=url, db_pool_pre_ping=pre_ping), url)
        sessionmaker = create_sessionmaker(engine)

        async def once(index: int, sessionmaker: Any = sessionmaker) -> None:
            async with sessionmaker() as session:
                await process_queries.read(session, 1 + index % 500)
                await session.commit()

        for index in range(100):
            await once(index)
        cpus, walls = [], []
        for _ in range(3):
            cpu, wall = time.process_time(), time.perf_counter()
            for index in range(reads):
                await once(index)
            cpus.append((time.process_time() - cpu) / reads * 1e6)
            walls.append((time.perf_counter() - wall) / reads * 1e6)
        await engine.dispose()
        lines.append(
            f"| {str(pre_ping).lower()} | {min(cpus):.0f} | {statistics.median(cpus):.0f} | "
            f"{statistics.median(walls):.0f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="an existing seeded database (default: a fresh one)")
    parser.add_argument("--reads", type=int, default=1500)
    args = parser.parse_args()
    url, _, made = bench.database_for(args.database, "atlas_dbpath")
    try:
        print("\n".join(asyncio.run(measure(url, args.reads))))
    finally:
        if made:
            bench.drop(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
