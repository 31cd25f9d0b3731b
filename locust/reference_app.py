"""The ceiling fixture: the least a Python server can do to answer GET process by id.

Starlette and asyncpg, nothing else: no authentication, no middleware, no ORM, no
validation. One SQL statement returns the process with its owner, author and four link
lists (`json_agg` subqueries, like the application's view) from the same schema; the row
becomes JSON with the standard library. It is what `locust/bench.py` compares
`GET /api/v1/processes/{id}` with, side by side, on the same machine:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/atlas \\
        .venv/bin/uvicorn reference_app:app --app-dir locust --workers 2 \\
        --loop uvloop --http httptools --no-access-log --port 8001
    curl http://127.0.0.1:8001/processes/1
"""

# The SQL is assembled from constant table and column names, never from input.
# ruff: noqa: S608

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _links(link: str, target: str, column: str) -> str:
    return f"""COALESCE((
        SELECT json_agg(json_build_object('id', t.id, 'name', t.name) ORDER BY t.id)
        FROM {link} l JOIN {target} t ON t.id = l.{column}
        WHERE l.process_id = p.id), '[]'::json)"""


def _person(column: str) -> str:
    person = "json_build_object('id', u.id, 'full_name', u.full_name)"
    return f"(SELECT {person} FROM users u WHERE u.id = p.{column})"


PROCESS_BY_ID = f"""
SELECT p.id, p.title, p.description, p.status, p.criticality,
       {_person("owner_id")} AS owner,
       {_links("process_departments", "departments", "department_id")} AS departments,
       {_links("process_locations", "locations", "location_id")} AS locations,
       {_links("process_resources", "resources", "resource_id")} AS resources,
       {_links("process_roles", "roles", "role_id")} AS roles,
       p.created_at, p.updated_at,
       {_person("created_by_id")} AS created_by,
       p.version
FROM processes p WHERE p.id = $1
"""


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(_dsn(), min_size=10, max_size=10, init=_init)
    try:
        yield
    finally:
        await app.state.pool.close()


async def read_process(request: Request) -> Response:
    try:
        process_id = int(request.path_params["process_id"])
    except ValueError:
        return JSONResponse({"detail": "not found"}, status_code=404)
    async with request.app.state.pool.acquire() as connection:
        row = await connection.fetchrow(PROCESS_BY_ID, process_id)
    if row is None:
        return JSONResponse({"detail": "not found"}, status_code=404)
    body: dict[str, Any] = dict(row)
    body["created_at"] = body["created_at"].isoformat()
    body["updated_at"] = body["updated_at"].isoformat()
    return JSONResponse(body, headers={"ETag": f'W/"{body["version"]}"'})


app = Starlette(routes=[Route("/processes/{process_id}", read_process)], lifespan=lifespan)
