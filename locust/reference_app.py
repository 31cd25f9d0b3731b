"""The raw-limit fixture: the least a Python server does to answer Atlas's reference mix.

Starlette, asyncpg and pydantic-core's JSON functions (Atlas's serializer, without any
model), nothing else: no authentication, no middleware, no ORM, no validation beyond what
keeps a bad body from writing half. It serves the four requests
of the reference mix with the same JSON (byte for byte) and the same rows as Process
Atlas, so that `locust/bench.py` can compare each with the least it could cost:

- `GET /processes/{id}`: one statement (`PROCESS_BY_ID`), ETag;
- `GET /processes?limit=100[&cursor=...]`: one statement for the page and its links,
  `{"items": [...], "next_cursor": ...}` with the same signed keyset cursor as Atlas;
- `POST /processes` with links: 201, the process row, its link rows and its audit event
  in one transaction (unknown ids: 422, nothing written);
- `PATCH /processes/{id}` replacing links: the row locked, a new version when anything
  changed, its audit event, one transaction.

Every route answers under `/processes` and `/api/v1/processes` (Atlas's paths, so one
locust mix drives both). `GET /catalogue` gives the ids the locust users pick from. A
fixed user (`REFERENCE_ACTOR`, default the demo admin) stands for the authenticated one.
The SQL is in `reference_sql.py`; tests/test_reference_app.py proves both sides equal.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/atlas \\
        .venv/bin/uvicorn reference_app:app --app-dir locust --workers 2 \\
        --loop uvloop --http httptools --no-access-log --port 8001
    curl http://127.0.0.1:8001/processes/1
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import pydantic_core
from reference_sql import (
    ACTOR,
    AUDITED,
    CATALOGUE,
    CATALOGUE_IDS,
    INSERT_AUDIT,
    INSERT_PROCESS,
    LINKS,
    LOCK_PROCESS,
    PAGE,
    PROCESS_BY_ID,
    SETTABLE,
    replace_links,
    update_statement,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEMO_ADMIN = "admin@demo.process-atlas.test"
# Atlas's cursor MAC key (app/core/pagination.py): the same cursors, the same cost.
CURSOR_KEY = b"process-atlas/cursor/v1"
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
CREATE_FIELDS = frozenset({*SETTABLE, *LINKS})
REQUIRED = ("title", "status", "criticality")  # never null, as in Atlas's PATCH


class Refused(Exception):
    """A client error: answered as application/problem+json, after any rollback."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> Response:
        body = {"title": "Refused", "status": self.status, "detail": self.detail}
        return JSONResponse(body, self.status, media_type="application/problem+json")


def _connect(url: str | None) -> tuple[str, dict[str, str]]:
    """asyncpg's DSN and arguments for a PostgreSQL URL (SQLAlchemy's form too).

    A unix socket (`?host=/dir`, the embedded server's) goes as an argument: asyncpg reads
    the query's host only when the address names none, and SQLAlchemy writes `@:5432`.
    """
    url = url or os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    query = parse_qs(parts.query)
    if "host" not in query:
        return urlunsplit(parts), {}
    rest = urlencode({key: values[0] for key, values in query.items() if key != "host"})
    return urlunsplit(parts._replace(query=rest)), {"host": query["host"][0]}


async def _init(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=pydantic_core.from_json, schema="pg_catalog"
    )


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """`body` in JSON by pydantic-core's serializer, Atlas's: the same bytes, no model.

    Timestamps come out as Atlas writes them (`...Z`), names unescaped, no spaces.
    """
    return Response(pydantic_core.to_json(body), status, headers, "application/json")


def _answer(row: asyncpg.Record | None, status: int = 200) -> Response:
    if row is None:
        raise Refused(404, "The process does not exist.")
    headers = {"ETag": f'W/"{row["version"]}"'}
    if status == 201:
        headers["Location"] = f"/api/v1/processes/{row['id']}"
    return _json(dict(row), status, headers)


# --- the keyset cursor, as app/core/pagination.py makes it for the default (id) order --


def _signature(payload: bytes) -> str:
    digest = hmac.new(CURSOR_KEY, payload, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _cursor(last_id: int) -> str:
    payload = json.dumps({"t": "processes", "s": ["id"], "v": [last_id]}, separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{encoded}.{_signature(payload.encode())}"


def _after(cursor: str | None) -> int:
    """The last id of the previous page (0 on the first); 422 for a cursor Atlas would refuse."""
    if not cursor:
        return 0
    encoded, _, signature = cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        body = json.loads(payload)
        valid = hmac.compare_digest(signature, _signature(payload))
        if valid and body["t"] == "processes" and body["s"] == ["id"]:
            (last_id,) = body["v"]
            if type(last_id) is int:
                return last_id
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise Refused(422, "The cursor is not valid for this list and sort.")


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise Refused(422, f"limit must be 1 to {MAX_LIMIT}.")
    return int(text)


# --- writes -----------------------------------------------------------------------------


async def _body(request: Request, allowed: frozenset[str]) -> dict[str, Any]:
    """The JSON object sent, with only `allowed` fields, required ones not null, ids ints."""
    try:
        body = await request.json()
    except ValueError:
        raise Refused(422, "The body is not JSON.") from None
    if not isinstance(body, dict) or not body.keys() <= allowed:
        raise Refused(422, f"The body must be an object of {', '.join(sorted(allowed))}.")
    if any(field in body and body[field] is None for field in REQUIRED):
        raise Refused(422, f"These fields cannot be null: {', '.join(REQUIRED)}.")
    if isinstance(body.get("title"), str):
        body["title"] = body["title"].strip()  # Atlas's Title strips
    for field in LINKS.keys() & body.keys():
        ids = body[field]
        if not isinstance(ids, list) or any(type(item) is not int for item in ids):
            raise Refused(422, f"{field} must be a list of ids.")
    return body


async def _replace(
    connection: asyncpg.Connection, process_id: int, links: dict[str, list[int]]
) -> dict[str, dict[str, list[int]]]:
    """Make each kind in `links` exactly those ids; the audit's `{added, removed}` per kind."""
    fields = tuple(field for field in LINKS if field in links)
    if not fields:
        return {}
    found: dict[str, dict[str, list[int]]] = {
        field: {"added": [], "removed": [], "missing": []} for field in fields
    }
    rows = await connection.fetch(
        replace_links(fields), process_id, *(links[field] for field in fields)
    )
    for field, change, linked_id in rows:
        found[field][change].append(linked_id)
    missing = {field: sorted(ids["missing"]) for field, ids in found.items() if ids["missing"]}
    if missing:
        named = "; ".join(f"{field}: {', '.join(map(str, ids))}" for field, ids in missing.items())
        raise Refused(422, f"Unknown ids in {named}.")  # raised in the transaction: rollback
    return {
        field: {"added": sorted(ids["added"]), "removed": sorted(ids["removed"])}
        for field, ids in found.items()
        if ids["added"] or ids["removed"]
    }


async def _audit(
    connection: asyncpg.Connection,
    request: Request,
    action: str,
    process_id: int,
    changes: dict[str, Any],
) -> None:
    """The audit event Atlas writes in the same transaction (its request id as Atlas's)."""
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    actor = request.app.state.actor_id
    await connection.execute(
        INSERT_AUDIT, actor, action, process_id, json.dumps(changes), request_id
    )


Write = Callable[[asyncpg.Connection], Awaitable[Response]]


async def _writing(request: Request, write: Write) -> Response:
    """Run `write(connection)` in one transaction; a refusal or a bad value rolls it back."""
    try:
        async with request.app.state.pool.acquire() as connection, connection.transaction():
            return await write(connection)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as error:
        return Refused(422, f"The database refused the values: {error}").response()


# --- routes -----------------------------------------------------------------------------


async def read_process(request: Request) -> Response:
    async with request.app.state.pool.acquire() as connection:
        row = await connection.fetchrow(PROCESS_BY_ID, request.path_params["process_id"])
    return _answer(row)


async def list_processes(request: Request) -> Response:
    """A page in id order (Atlas's default sort), with the next page's cursor."""
    limit = _limit(request.query_params.get("limit"))
    after = _after(request.query_params.get("cursor"))
    async with request.app.state.pool.acquire() as connection:
        rows = await connection.fetch(PAGE, after, limit)
    items = [dict(row) for row in rows]
    more = bool(rows) and rows[0]["fetched"] > limit
    for item in items:
        del item["fetched"]
    next_cursor = _cursor(items[-1]["id"]) if more else None
    return _json({"items": items, "next_cursor": next_cursor})


async def create_process(request: Request) -> Response:
    body = await _body(request, CREATE_FIELDS)
    values = {"status": "draft", "criticality": "medium", **body}
    fields = [values.get(field) for field in SETTABLE]

    async def write(connection: asyncpg.Connection) -> Response:
        process_id = await connection.fetchval(INSERT_PROCESS, *fields, request.app.state.actor_id)
        changes: dict[str, Any] = {field: [None, values.get(field)] for field in AUDITED}
        links = {field: body[field] for field in LINKS if body.get(field)}
        changes.update(await _replace(connection, process_id, links))
        await _audit(connection, request, "create", process_id, changes)
        return _answer(await connection.fetchrow(PROCESS_BY_ID, process_id), 201)

    return await _writing(request, write)


async def update_process(request: Request) -> Response:
    """Set the fields sent; each link list sent replaces that set. A change is a new version."""
    process_id = request.path_params["process_id"]
    body = await _body(request, CREATE_FIELDS)

    async def write(connection: asyncpg.Connection) -> Response:
        before = await connection.fetchrow(LOCK_PROCESS, process_id)
        if before is None:
            raise Refused(404, "The process does not exist.")
        set_now = {f: body[f] for f in SETTABLE if f in body and body[f] != before[f]}
        changes: dict[str, Any] = {field: [before[field], set_now[field]] for field in set_now}
        links = {field: body[field] for field in LINKS if field in body}
        changes.update(await _replace(connection, process_id, links))
        if changes:
            columns = tuple(set_now)
            await connection.execute(update_statement(columns), process_id, *set_now.values())
            await _audit(connection, request, "update", process_id, changes)
        return _answer(await connection.fetchrow(PROCESS_BY_ID, process_id))

    return await _writing(request, write)


async def catalogue(request: Request) -> Response:
    """The ids the locust users pick from (setup only, not part of the mix)."""
    async with request.app.state.pool.acquire() as connection:
        row = await connection.fetchrow(CATALOGUE_IDS)
    return JSONResponse({name: row[name] for name in CATALOGUE})


async def _refused(_request: Request, error: Exception) -> Response:
    assert isinstance(error, Refused)
    return error.response()


def create_app(database_url: str | None = None, actor_email: str | None = None) -> Starlette:
    """The fixture on `database_url` (default DATABASE_URL), writing as `actor_email`."""
    actor = actor_email or os.environ.get("REFERENCE_ACTOR", DEMO_ADMIN)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dsn, where = _connect(database_url)
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10, init=_init, **where)
        try:
            app.state.actor_id = await pool.fetchval(ACTOR, actor)
            if app.state.actor_id is None:
                raise RuntimeError(f"no user {actor} to write as: seed the demo data")
            app.state.pool = pool
            yield
        finally:
            await pool.close()

    routes = [Route("/catalogue", catalogue)]
    for prefix in ("/api/v1/processes", "/processes"):
        routes += [
            Route(f"{prefix}/{{process_id:int}}", read_process),
            Route(f"{prefix}/{{process_id:int}}", update_process, methods=["PATCH"]),
            Route(prefix, list_processes),
            Route(prefix, create_process, methods=["POST"]),
        ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={Refused: _refused})


app = create_app()
