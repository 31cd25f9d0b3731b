"""CPU per request of the whole application, in-process: no server, no network, no client.

    .venv/bin/python locust/inprocess.py [--database NAME] [--path /api/v1/processes/{i}]
    .venv/bin/python locust/inprocess.py --method PATCH --body \
        '{"department_ids": [{n}], "role_ids": [{n}, 4]}'
    .venv/bin/python locust/inprocess.py --header 'If-None-Match: W/"1"'
    .venv/bin/py-spy record -r 500 --format raw -o spy.txt -- \\
        .venv/bin/python locust/inprocess.py --requests 4000
    .venv/bin/python locust/inprocess.py --layers spy.txt

Drives the ASGI application (lifespan, every middleware, the token check, the database)
with raw ASGI calls, one request after another, and prints the process's CPU time per
request (best and median of 3 rounds). `{i}` in the path becomes a process id (1 to 500),
`{n}` in a `--body` becomes 1, 2 or 3, so consecutive writes to one process change it.
Far steadier than a load test on a shared machine, it is how most hot-path changes of
docs/benchmarks.md were measured. `--layers FILE` reads py-spy's raw output and prints the share of
samples inside each function (inclusive), the profile tables of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench

Headers = list[tuple[bytes, bytes]]


async def call(app: Any, method: str, target: str, headers: Headers, body: bytes = b"") -> Any:
    """One request through the ASGI app; (status, body)."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    received = False
    answer: dict[str, Any] = {"status": None, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app answers
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], answer["body"]


async def measure(
    url: str,
    redis_url: str,
    path: str,
    requests: int,
    method: str = "GET",
    body: str = "",
    extra_headers: Headers | None = None,
) -> str:
    from asgi_lifespan import LifespanManager

    from app.core.config import Settings
    from app.main import create_app
    from app.seed import DEMO_ADMIN_EMAIL, demo_password

    settings = Settings(
        database_url=url,
        redis_url=redis_url,
        redis_key_prefix=f"pa-inprocess-{os.getpid()}:",
        rate_limit_default="1000000/second",
        rate_limit_auth="1000000/second",
        log_level="WARNING",
        auto_migrate=False,
    )
    async with LifespanManager(create_app(settings)) as manager:
        app = manager.app
        form = urlencode({"username": DEMO_ADMIN_EMAIL, "password": demo_password()})
        status, token = await call(
            app,
            "POST",
            "/api/v1/auth/token",
            [(b"content-type", b"application/x-www-form-urlencoded")],
            form.encode(),
        )
        if status != 200:
            raise SystemExit(f"inprocess: sign-in answered {status}: {token[:200]!r}")
        headers = [(b"authorization", f"Bearer {json.loads(token)['access_token']}".encode())]
        if body:
            headers.append((b"content-type", b"application/json"))
        headers.extend(extra_headers or [])

        def request(index: int) -> tuple[str, bytes]:
            # {n} cycles through 1-3 and 500 % 3 != 0: each write to a process changes it.
            content = body.replace("{n}", str(1 + index % 3)).encode()
            return path.format(i=1 + index % 500), content

        for index in range(200):  # warm-up: statement caches, pools, the route index
            status, answer = await call(app, method, *_with_headers(request(index), headers))
        if status not in {200, 201, 304}:  # 201: a create; 304: a conditional GET
            raise SystemExit(f"inprocess: {path} answered {status}: {answer[:200]!r}")
        rounds = []
        for _ in range(3):
            started = time.process_time()
            for index in range(requests):
                await call(app, method, *_with_headers(request(index), headers))
            rounds.append((time.process_time() - started) / requests * 1e6)
    return (
        f"{method} {path}: CPU per request {min(rounds):,.0f} us (best of 3), "
        f"median {statistics.median(rounds):,.0f} us, {requests} requests a round"
    )


def _with_headers(target: tuple[str, bytes], headers: Headers) -> tuple[str, Headers, bytes]:
    path, content = target
    return path, headers, content


def _header(line: str) -> tuple[bytes, bytes]:
    """`If-None-Match: W/"1"` as an ASGI header."""
    name, _, value = line.partition(":")
    return name.strip().lower().encode(), value.strip().encode()


def _library(frame: str) -> str:
    """The package a py-spy frame (`name (package/module.py:line)`) belongs to."""
    match = re.search(r"\(([^)]*):\d+\)$", frame)
    where = match[1] if match else ""
    first = where.split("/", 1)[0] if "/" in where else where.removesuffix(".py")
    if first in sys.stdlib_module_names or first.startswith("<"):
        return "python (stdlib: asyncio, contextlib, ...)"
    names = {
        "app": "app (our code)",
        "starlette": "fastapi + starlette",
        "fastapi": "fastapi + starlette",
    }
    return names.get(first, first)


def layers(raw: Path, top: int) -> str:
    """Where py-spy's samples under this script's `measure` were: by library, by function.

    By library: the package of the innermost frame (the code actually running). By
    function: inclusive share (the function or anything it called).
    """
    inclusive: collections.Counter[str] = collections.Counter()
    innermost: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(frame.startswith("measure (") for frame in frames):
            continue
        total += int(count)
        innermost[_library(frames[-1])] += int(count)
        seen = set()
        for frame in frames:
            name = re.sub(r" \((?:.*/)?([^/:]+):\d+\)$", r" (\1)", frame)
            if name not in seen:
                seen.add(name)
                inclusive[name] += int(count)
    if not total:
        return "no samples of measure() in that file"
    rows = ["| library (innermost frame) | share |", "| --- | ---: |"]
    rows += [f"| {name} | {100 * n / total:.1f} % |" for name, n in innermost.most_common()]
    rows += ["", "| function (inclusive) | share |", "| --- | ---: |"]
    rows += [f"| `{name}` | {100 * n / total:.1f} % |" for name, n in inclusive.most_common(top)]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="an existing seeded database (default: a fresh one)")
    parser.add_argument("--path", default="/api/v1/processes/{i}")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="", help="a JSON body; {n} becomes 1, 2 or 3")
    parser.add_argument(
        "--header", action="append", default=[], help="'Name: value', sent with every request"
    )
    parser.add_argument("--requests", type=int, default=2000, help="per round (3 rounds)")
    parser.add_argument("--layers", type=Path, metavar="RAW", help="summarise a py-spy raw file")
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    if args.layers:
        print(layers(args.layers, args.top))
        return 0
    url, redis_url, made = bench.database_for(args.database, "atlas_inprocess")
    try:
        import uvloop

        extra = [_header(header) for header in args.header]
        print(
            uvloop.run(
                measure(url, redis_url, args.path, args.requests, args.method, args.body, extra)
            ),
            *(f"with {header}" for header in args.header),
        )
    finally:
        if made:
            bench.drop(url)
        bench.clear_redis(redis_url, f"pa-inprocess-{os.getpid()}:")
    return 0


if __name__ == "__main__":
    sys.exit(main())
