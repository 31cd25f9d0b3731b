"""Every error a request can raise, rendered as RFC 9457 problem+json; `errors` types them."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from app.core.constraints import constraint_error, constraint_name
from app.core.errors import PROBLEM_TYPE_PREFIX, STATUSES, AppError, problem_title
from app.core.redis import REDIS_UNREACHABLE, RedisPoolExhausted
from app.core.routes import RouteIndex
from app.core.versioning import NotModified, not_modified_response

logger = logging.getLogger("app.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


def _request_id(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def problem_response(
    scope: Scope,
    *,
    status: int,
    slug: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemResponse:
    """A problem+json response for the request in `scope`; the slug defaults to the status's."""
    if slug is None:
        known = STATUSES.get(status)
        slug = "http-error" if known is None else known.slug
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{slug}",
        "title": problem_title(status),
        "status": status,
        "detail": detail,
        "instance": scope.get("path"),
        "request_id": _request_id(scope),
    }
    if extra:
        body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def _app_problem(scope: Scope, error: AppError) -> ProblemResponse:
    return problem_response(
        scope,
        status=error.status,
        slug=error.slug,
        detail=error.detail,
        headers=error.headers,
        extra=error.extra,
    )


async def _app_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, AppError)
    return _app_problem(request.scope, error)


def _http_error_handler(routes: RouteIndex) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Starlette's HTTP errors as problems; a 405 names the methods `routes` has for the path."""

    async def http_error(request: Request, error: Exception) -> ProblemResponse:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code
        detail = error.detail if isinstance(error.detail, str) else None
        headers = dict(error.headers or {})
        if status == 400 and isinstance(error.__cause__, ValueError | RecursionError):
            # FastAPI's "error parsing the body": not UTF-8, or nested past the JSON parser's limit.
            return _unreadable_body(request.scope)
        if status == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}."
        elif status == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
            headers["Allow"] = routes.allowed_methods(request.scope["path"])
        return problem_response(request.scope, status=status, detail=detail, headers=headers)

    return http_error


def _unreadable_body(scope: Scope) -> ProblemResponse:
    return problem_response(
        scope,
        status=422,
        detail="The body is not valid JSON: it must be UTF-8 text, nested less than 1,000 deep.",
        extra={"errors": [{"loc": ["body"], "msg": "unreadable JSON", "type": "json_invalid"}]},
    )


async def _validation_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RequestValidationError)
    # Only where and why: the rejected input itself may be a password.
    errors = [
        {"loc": list(item.get("loc", ())), "msg": item.get("msg", ""), "type": item.get("type", "")}
        for item in error.errors()
    ]
    return problem_response(
        request.scope,
        status=422,
        detail="The request is not valid; see `errors`.",
        extra={"errors": errors},
    )


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    original = getattr(error.orig, "__cause__", None) or error.orig
    state = getattr(original, "sqlstate", None) or getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _unavailable(scope: Scope, detail: str) -> ProblemResponse:
    return problem_response(scope, status=503, detail=detail, headers={"Retry-After": "1"})


async def _database_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, sa_exc.DBAPIError)
    registered = constraint_error(error)
    if registered is not None:
        return _app_problem(request.scope, registered)
    state = _sqlstate(error) or ""
    # Violations of constraints no domain registered: their kind, and the name to report.
    constraint = constraint_name(error)
    if state == "23505":
        return problem_response(
            request.scope,
            status=409,
            detail="A record with the same unique value already exists.",
            extra={"constraint": constraint},
        )
    if state == "23503":
        return problem_response(
            request.scope,
            status=409,
            detail="The change refers to a record that does not exist or is in use.",
            extra={"constraint": constraint},
        )
    if state in {"23514", "23502", "23P01"}:
        return problem_response(
            request.scope,
            status=422,
            detail="A value breaks a rule of the data model.",
            extra={"constraint": constraint},
        )
    if state.startswith("22"):
        return problem_response(
            request.scope,
            status=422,
            detail="A value cannot be stored (out of range or not valid text).",
        )
    if state in {"40001", "40P01"}:
        return _unavailable(request.scope, "The write collided with another; retry it.")
    if state == "57014":
        logger.warning("statement cancelled by the statement timeout")
        return _unavailable(request.scope, "The database took too long to answer.")
    if state.startswith(("53", "58")):
        # Insufficient resources (disk full, out of memory, too many connections), I/O errors.
        logger.warning("database out of resources: %s", state)
        return _unavailable(request.scope, "The database cannot take this now; retry shortly.")
    if state.startswith("08") or state.startswith("57") or error.connection_invalidated:
        logger.warning("database unavailable: %s", type(error.orig).__name__)
        return _unavailable(request.scope, "The database is unavailable; retry shortly.")
    if isinstance(error, sa_exc.InterfaceError | sa_exc.OperationalError):
        logger.warning("database unavailable: %s", type(error.orig).__name__)
        return _unavailable(request.scope, "The database is unavailable; retry shortly.")
    raise error


async def _connection_error(request: Request, error: Exception) -> ProblemResponse:
    logger.warning("database unavailable: %s", type(error).__name__)
    return _unavailable(request.scope, "The database is unavailable; retry shortly.")


def redis_problem(scope: Scope, error: RedisError) -> ProblemResponse:
    """503 when Redis is unreachable or its pool stays full; an error it answers is a bug: 500."""
    if isinstance(error, RedisPoolExhausted):
        logger.warning("redis pool exhausted")
        return _unavailable(scope, "The service is saturated; retry shortly.")
    if isinstance(error, REDIS_UNREACHABLE):
        logger.warning("redis unavailable: %s", type(error).__name__)
        return _unavailable(scope, "A dependency is unavailable; retry shortly.")
    logger.error(
        "redis refused a command on %s %s: %s",
        scope.get("method"),
        scope.get("path"),
        error,
        exc_info=error,
    )
    return problem_response(
        scope, status=500, detail="An unexpected error occurred; it has been logged."
    )


async def _redis_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RedisError)
    return redis_problem(request.scope, error)


async def _pool_timeout(request: Request, error: Exception) -> ProblemResponse:
    logger.warning("database pool exhausted")
    return _unavailable(request.scope, "The service is saturated; retry shortly.")


def install_error_handlers(app: FastAPI, *, routes: RouteIndex) -> None:
    """Route every error type a request can raise to its problem+json rendering."""
    app.add_exception_handler(AppError, _app_error)
    # Not an error: a conditional GET whose copy is current (304, no body).
    app.add_exception_handler(NotModified, not_modified_response)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler(routes))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.TimeoutError, _pool_timeout)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(RedisError, _redis_error)
    for connection_error in (
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.InterfaceError,
    ):
        app.add_exception_handler(connection_error, _connection_error)


class CatchAllMiddleware:
    """Innermost guard: an unhandled exception becomes a logged 500 problem, never a traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = problem_response(
                scope, status=500, detail="An unexpected error occurred; it has been logged."
            )
            await response(scope, receive, send)


def problems_as_problem_json(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare every `ProblemDetail` response under application/problem+json, as it is sent.

    FastAPI documents a response `model` under the route's own media type (application/json).
    """
    problem = {"$ref": "#/components/schemas/ProblemDetail"}
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if content.get("application/json", {}).get("schema") == problem:
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": problem}}
    return openapi
