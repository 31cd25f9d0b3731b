"""The errors a client can cause: one table of statuses, the typed errors and their OpenAPI docs.

`app.core.problems` renders them as RFC 9457 problem+json.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from pydantic import BaseModel, Field

PROBLEM_TYPE_PREFIX = "urn:process-atlas:problem:"


@dataclass(frozen=True, slots=True)
class Status:
    """What a problem with one HTTP status says: its type slug, title and OpenAPI description."""

    slug: str
    title: str
    description: str


# Titles are RFC 9110's reason phrases, pinned: `HTTPStatus.phrase` changes between Python
# versions (422 and 413 were renamed in 3.13), and clients may match on titles.
STATUSES = {
    400: Status("bad-request", "Bad Request", "The request cannot be processed."),
    401: Status(
        "unauthorized",
        "Unauthorized",
        "Not authenticated, or the token is invalid, expired or revoked.",
    ),
    403: Status("forbidden", "Forbidden", "The caller lacks the permission this needs."),
    404: Status("not-found", "Not Found", "No such resource."),
    405: Status(
        "method-not-allowed", "Method Not Allowed", "The path does not answer this method."
    ),
    406: Status("not-acceptable", "Not Acceptable", "No representation the client accepts."),
    409: Status("conflict", "Conflict", "Conflicts with existing data."),
    412: Status(
        "precondition-failed",
        "Precondition Failed",
        "If-Match names a version that is no longer current.",
    ),
    413: Status("payload-too-large", "Content Too Large", "The body is larger than allowed."),
    415: Status("unsupported-media-type", "Unsupported Media Type", "The body is not JSON."),
    422: Status("validation-failed", "Unprocessable Content", "The request is not valid."),
    429: Status("too-many-requests", "Too Many Requests", "Too many requests; see Retry-After."),
    500: Status("internal-error", "Internal Server Error", "An unexpected error; it is logged."),
    503: Status(
        "service-unavailable",
        "Service Unavailable",
        "A dependency is unavailable; see Retry-After.",
    ),
}


def problem_title(status: int) -> str:
    """The title of a problem with `status`: ours when pinned, else Python's phrase."""
    known = STATUSES.get(status)
    return known.title if known is not None else HTTPStatus(status).phrase


class AppError(Exception):
    """Base of every error a client can cause; subclasses set the status (the slug follows)."""

    status: ClassVar[int] = 400

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.status not in STATUSES:
            raise TypeError(f"{cls.__name__}: status {cls.status} is not in STATUSES")

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
    def slug(self) -> str:
        return STATUSES[self.status].slug

    @property
    def title(self) -> str:
        return STATUSES[self.status].title


class BadRequest(AppError):
    status = 400


class Unauthorized(AppError):
    status = 401

    def __init__(self, detail: str | None = "Not authenticated.", **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status = 403


class NotFound(AppError):
    status = 404


class Conflict(AppError):
    status = 409


class PreconditionFailed(AppError):
    status = 412


class PayloadTooLarge(AppError):
    status = 413


class UnsupportedMediaType(AppError):
    status = 415


class ValidationFailed(AppError):
    status = 422


class TooManyRequests(AppError):
    status = 429

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", {}) or {}
        headers["Retry-After"] = str(max(1, retry_after))
        super().__init__(detail, headers=headers, **kwargs)


class ServiceUnavailable(AppError):
    status = 503

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        headers = kwargs.pop("headers", {}) or {}
        headers["Retry-After"] = str(retry_after)
        super().__init__(detail, headers=headers, **kwargs)


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


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting the problem documents a route can answer."""
    return {
        status: {"model": ProblemDetail, "description": STATUSES[status].description}
        for status in statuses
    }


AUTHENTICATED_ERRORS = problem_responses(401, 403, 503)

# What any route may answer, whatever it does: the edge middleware and the error handlers.
EDGE_ERRORS = problem_responses(413, 415, 422, 429, 503)
