"""Typed application errors and the handlers that render them as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.core.redis import REDIS_UNREACHABLE, RedisPoolExhausted

logger = logging.getLogger("app.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:process-atlas:problem:"

# RFC 9110's reason phrases, pinned: `HTTPStatus.phrase` changes between Python versions
# (422 and 413 were renamed in 3.13), and clients may match on titles.
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem_title(status: int) -> str:
    """The title of a problem with `status`: ours when pinned, else Python's phrase."""
    return TITLES.get(status) or HTTPStatus(status).phrase


class ProblemDetail(BaseModel):
    """An RFC 9457 problem document, as every error response carries it."""

    type: str = Field(examples=[f"{PROBLEM_TYPE_PREFIX}not-found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["Process 42 does not exist."])
    instance: str | None = Field(default=None, examples=["/api/v1/processes/42"])
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Field errors of a 422: `loc`, `msg` and `type` each."
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


class AppError(Exception):
    """Base of every error a client can cause; subclasses set the status and slug."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def title(self) -> str:
        return problem_title(self.status)


class BadRequest(AppError):
    status, slug = 400, "bad-request"


class Unauthorized(AppError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str | None = "Not authenticated.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status, slug = 403, "forbidden"


class NotFound(AppError):
    status, slug = 404, "not-found"


class Conflict(AppError):
    status, slug = 409, "conflict"


class PreconditionFailed(AppError):
    status, slug = 412, "precondition-failed"


class PayloadTooLarge(AppError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(AppError):
    status, slug = 415, "unsupported-media-type"


class ValidationFailed(AppError):
    status, slug = 422, "validation-failed"


class TooManyRequests(AppError):
    status, slug = 429, "too-many-requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", {}) or {}
        headers["Retry-After"] = str(max(1, retry_after))
        super().__init__(detail, headers=headers, **kwargs)


class ServiceUnavailable(AppError):
    status, slug = 503, "service-unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", {}) or {}
        headers["Retry-After"] = str(retry_after)
        super().__init__(detail, headers=headers, **kwargs)


# Constraint name -> message a client can act on. Domains register theirs at import.
_CONSTRAINT_MESSAGES: dict[str, str] = {}


def register_constraint(name: str, message: str) -> None:
    """Describe a named database constraint for the clients that violate it."""
    _CONSTRAINT_MESSAGES[name] = message


def _request_id(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get("request_id")
    return value if isinstance(value, str) else None


def problem_response(
    scope: Scope,
    *,
    status: int,
    slug: str,
    title: str | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ProblemResponse:
    """Build a problem+json response for the request in `scope`."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{slug}",
        "title": title or problem_title(status),
        "status": status,
        "detail": detail,
        "instance": scope.get("path"),
        "request_id": _request_id(scope),
    }
    if extra:
        body.update(extra)
    return ProblemResponse(body, status_code=status, headers=headers)


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
}


async def _app_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, AppError)
    return problem_response(
        request.scope,
        status=error.status,
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        headers=error.headers,
        extra=error.extra,
    )


async def _http_error(request: Request, error: Exception) -> ProblemResponse:
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
        headers["Allow"] = _allowed_methods(request)
    return problem_response(
        request.scope,
        status=status,
        slug=_SLUGS.get(status, "http-error"),
        detail=detail,
        headers=headers,
    )


def _unreadable_body(scope: Scope) -> ProblemResponse:
    return problem_response(
        scope,
        status=422,
        slug="validation-failed",
        detail="The body is not valid JSON: it must be UTF-8 text, nested less than 1,000 deep.",
        extra={"errors": [{"loc": ["body"], "msg": "unreadable JSON", "type": "json_invalid"}]},
    )


def _allowed_methods(request: Request) -> str:
    """The methods of the path the router matched (Starlette names only its first route's).

    One path can have a route per method (`GET /users/me`, `PATCH /users/me`); the first
    template that matches is the one the router picked.
    """
    path = request.scope["path"]
    matching = [
        context
        for context in iter_route_contexts(request.app.router.routes)
        if context.methods and context.path_regex.match(path)
    ]
    if not matching:
        return ""
    template = matching[0].path_format
    methods = {m for c in matching if c.path_format == template for m in c.methods or ()}
    return ", ".join(sorted(methods))


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
        slug="validation-failed",
        detail="The request is not valid; see `errors`.",
        extra={"errors": errors},
    )


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    original = getattr(error.orig, "__cause__", None) or error.orig
    state = getattr(original, "sqlstate", None) or getattr(error.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def _constraint(error: sa_exc.DBAPIError) -> str | None:
    original = getattr(error.orig, "__cause__", None) or error.orig
    name = getattr(original, "constraint_name", None)
    return name if isinstance(name, str) else None


def _unavailable(scope: Scope, detail: str) -> ProblemResponse:
    return problem_response(
        scope,
        status=503,
        slug="service-unavailable",
        detail=detail,
        headers={"Retry-After": "1"},
    )


async def _database_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, sa_exc.DBAPIError)
    state = _sqlstate(error) or ""
    constraint = _constraint(error)
    known = _CONSTRAINT_MESSAGES.get(constraint or "")
    if state == "23505":
        return problem_response(
            request.scope,
            status=409,
            slug="conflict",
            detail=known or "A record with the same unique value already exists.",
            extra={"constraint": constraint},
        )
    if state == "23503":
        return problem_response(
            request.scope,
            status=409,
            slug="conflict",
            detail=known or "The change refers to a record that does not exist or is in use.",
            extra={"constraint": constraint},
        )
    if state in {"23514", "23502", "23P01"}:
        return problem_response(
            request.scope,
            status=422,
            slug="validation-failed",
            detail=known or "A value breaks a rule of the data model.",
            extra={"constraint": constraint},
        )
    if state.startswith("22"):
        return problem_response(
            request.scope,
            status=422,
            slug="validation-failed",
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
        scope,
        status=500,
        slug="internal-error",
        detail="An unexpected error occurred; it has been logged.",
    )


async def _redis_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RedisError)
    return redis_problem(request.scope, error)


async def _pool_timeout(request: Request, error: Exception) -> ProblemResponse:
    logger.warning("database pool exhausted")
    return _unavailable(request.scope, "The service is saturated; retry shortly.")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error type a request can raise to its problem+json rendering."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
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
                scope,
                status=500,
                slug="internal-error",
                detail="An unexpected error occurred; it has been logged.",
            )
            await response(scope, receive, send)


_RESPONSE_DESCRIPTIONS = {
    400: "The request cannot be processed.",
    401: "Not authenticated, or the token is invalid, expired or revoked.",
    403: "The caller lacks the permission this needs.",
    404: "No such resource.",
    409: "Conflicts with existing data.",
    412: "If-Match names a version that is no longer current.",
    413: "The body is larger than allowed.",
    415: "The body is not JSON.",
    422: "The request is not valid.",
    429: "Too many requests; see Retry-After.",
    503: "A dependency is unavailable; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting the problem documents a route can answer."""
    return {
        status: {"model": ProblemDetail, "description": _RESPONSE_DESCRIPTIONS[status]}
        for status in statuses
    }


AUTHENTICATED_ERRORS = problem_responses(401, 403, 503)

# What any route may answer, whatever it does: the edge middleware and the error handlers.
EDGE_ERRORS = problem_responses(413, 415, 422, 429, 503)


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
