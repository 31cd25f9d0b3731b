"""Pure ASGI middleware: no BaseHTTPMiddleware, no per-request task or body buffering.

Per-request work is kept to dict lookups and precomputed header lists; the cost of the
whole stack is measured in docs/observability.md.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterable

from prometheus_client.metrics import Counter, Gauge, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id_var, user_id_var
from app.core.metrics import HTTP_DURATION, HTTP_IN_PROGRESS, HTTP_REQUESTS
from app.core.problems import problem_response
from app.core.routes import RouteIndex

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_logger = logging.getLogger("app.access")


class RequestIdMiddleware:
    """Accept a sane `X-Request-ID` or make one; expose it to logs, problems and the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class _HeadAnswered(Exception):
    """A HEAD's headers and empty body are sent: the route's further work is not needed."""


class HeadMiddleware:
    """HEAD is GET without the content (RFC 9110, 9.3.2): same route, status and headers.

    Innermost, so the rate limiter, the metrics and the access log see HEAD; the router sees
    GET, which also answers HEAD on a path without GET with the 405 a GET gets. A streaming
    answer (an export) is stopped after its headers instead of produced for nothing.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            raise _HeadAnswered

        with contextlib.suppress(_HeadAnswered):
            await self.app({**scope, "method": "GET"}, receive, headers_only)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SANE_REQUEST_ID.match(candidate) else None
    return None


_METHODS = {m: m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}


class ObservabilityMiddleware:
    """Per request: the HTTP metrics and one access-log line, labelled by route template.

    The template is that of the route the router picked; a request answered before
    routing (413, 429) gets the predicted one, which also labels the in-progress gauge
    since that is needed before routing happens.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteIndex,
        log_requests: bool = True,
        record_metrics: bool = True,
    ) -> None:
        self.app = app
        self.routes = routes
        self.log_requests = log_requests
        self.record_metrics = record_metrics
        self._in_progress: dict[tuple[str, str], Gauge] = {}
        self._finished: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = _METHODS.get(scope["method"], "other")
        predicted = self.routes.template(scope["path"])
        in_progress = self._in_progress_gauge(method, predicted) if self.record_metrics else None
        status = 500
        # The auth dependency names the user in this context; start every request without one.
        user_token = user_id_var.set(None)
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if in_progress is not None:
            in_progress.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            route = self.routes.routed(scope) or predicted
            if in_progress is not None:
                in_progress.dec()
                counter, histogram = self._finished_series(method, route, status)
                counter.inc()
                histogram.observe(elapsed)
            if self.log_requests:
                _log_access(scope, method, route, status, elapsed)
            user_id_var.reset(user_token)

    def _in_progress_gauge(self, method: str, route: str) -> Gauge:
        gauge = self._in_progress.get((method, route))
        if gauge is None:
            gauge = self._in_progress[method, route] = HTTP_IN_PROGRESS.labels(method, route)
        return gauge

    def _finished_series(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        key = (method, route, status)
        series = self._finished.get(key)
        if series is None:
            series = self._finished[key] = (
                HTTP_REQUESTS.labels(method, route, str(status)),
                HTTP_DURATION.labels(method, route),
            )
        return series


def _log_access(scope: Scope, method: str, route: str, status: int, elapsed: float) -> None:
    client = scope.get("client")
    access_logger.info(
        "%s %s %s",
        method,
        route,
        status,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "client_ip": client[0] if client else None,
        },
    )


class _BodyTooLarge(HTTPException):
    """Raised from `receive` so the app's error handling renders the 413 problem."""


class BodySizeLimitMiddleware:
    """Answer 413 for a body over `max_bytes`: from Content-Length up front, else as it streams.

    `exempt_paths`: routes that enforce a limit of their own (the bulk imports read up to
    IMPORT_MAX_BYTES and name their row limit too).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"The request body is larger than {max_bytes} bytes."
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            # The server holds the body to its declared length; nothing left to count.
            await self.app(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(413, self.detail)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(scope, status=413, detail=self.detail)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class JsonBodyMiddleware:
    """Answer 415 when a body sent to a route that reads JSON is declared as something else.

    Without it FastAPI ignores a body whose Content-Type is not JSON and answers a puzzling
    422 about a missing body. Requests without a body, and routes that read forms, pass.
    """

    def __init__(self, app: ASGIApp, *, routes: RouteIndex) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _sends_non_json_body(scope):
            await self.app(scope, receive, send)
            return
        if self.routes.reads_json(scope["method"], scope["path"]):
            response = problem_response(
                scope,
                status=415,
                detail="This route reads JSON: send the body with Content-Type: application/json.",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _sends_non_json_body(scope: Scope) -> bool:
    """The request has a body (declared or chunked) whose media type is not JSON."""
    media_type = ""
    has_body = False
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.decode("latin-1").partition(";")[0].strip().lower()
        elif name == b"content-length":
            has_body = not value.isdigit() or int(value) > 0
        elif name == b"transfer-encoding":
            has_body = True
    kind, _, subtype = media_type.partition("/")
    is_json = kind == "application" and (subtype == "json" or subtype.endswith("+json"))
    return has_body and not is_json


API_CSP = "default-src 'none'; frame-ancestors 'none'"


def docs_csp(script_hashes: Iterable[str]) -> str:
    """Swagger UI's policy: its assets and API calls from this origin, inline scripts by hash."""
    scripts = " ".join(["'self'", *(f"'{digest}'" for digest in script_hashes)])
    return (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


Headers = list[tuple[bytes, bytes]]


class SecurityHeadersMiddleware:
    """Add nosniff, DENY framing, no referrer, a CSP (Swagger UI's on `docs_paths`) and HSTS.

    HSTS goes out when the request came over HTTPS (behind a trusted proxy that says so)
    or when `always_hsts` declares the deployment HTTPS-only. Answers to requests that carry
    an `Authorization` header get `Cache-Control: no-store`. Headers the app set win.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        docs_paths: Iterable[str],
        docs_script_hashes: Iterable[str] = (),
        hsts_max_age: int,
        always_hsts: bool = False,
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.always_hsts = always_hsts
        common: Headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        hsts = (b"strict-transport-security", f"max-age={hsts_max_age}; includeSubDomains".encode())
        api = [*common, (b"content-security-policy", API_CSP.encode())]
        docs = [*common, (b"content-security-policy", docs_csp(docs_script_hashes).encode())]
        self._headers: dict[tuple[bool, bool], Headers] = {
            (False, False): api,
            (False, True): [*api, hsts],
            (True, False): docs,
            (True, True): [*docs, hsts],
        }
        no_store = (b"cache-control", b"no-store")
        self._with_credentials = {key: [*value, no_store] for key, value in self._headers.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.always_hsts or scope.get("scheme") == "https"
        variants = self._with_credentials if _carries_credentials(scope) else self._headers
        extra = variants[scope["path"] in self.docs_paths, https]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in extra if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _carries_credentials(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope["headers"])


class AllowedHostsMiddleware:
    """Refuse a `Host` outside `ALLOWED_HOSTS` with a 400 problem; probes and metrics pass.

    `*.example.com` admits every subdomain. Health, readiness and metrics build no URLs from
    the host, and orchestrators reach them by pod IP, so they are exempt.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: Iterable[str], exempt_paths: Iterable[str]
    ) -> None:
        self.app = app
        patterns = [pattern.lower() for pattern in allowed_hosts]
        for pattern in patterns:
            if "*" in pattern and not (pattern.startswith("*.") and "*" not in pattern[1:]):
                raise ValueError(f"ALLOWED_HOSTS: {pattern!r} must be a name or '*.example.com'")
        self.exact = frozenset(pattern for pattern in patterns if not pattern.startswith("*."))
        self.suffixes = tuple(pattern[1:] for pattern in patterns if pattern.startswith("*."))
        self.exempt_paths = frozenset(exempt_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        host = _host_name(scope)
        if host is not None and (host in self.exact or host.endswith(self.suffixes)):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            scope,
            status=400,
            slug="host-not-allowed",
            detail="The Host header names a host this service does not answer for.",
        )
        await response(scope, receive, send)


def _host_name(scope: Scope) -> str | None:
    """The host of the `Host` header, lower-cased, without its port (None if absent)."""
    for name, value in scope["headers"]:
        if name == b"host":
            host: str = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host.partition("]")[0] + "]"
            return host.rpartition(":")[0] if ":" in host else host
    return None
