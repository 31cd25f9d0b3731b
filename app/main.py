"""The application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRouter
from starlette.responses import RedirectResponse
from starlette.routing import Match
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app import __version__
from app.api.docs import SwaggerUI
from app.api.metrics import METRICS_PATH
from app.api.metrics import router as metrics_router
from app.api.operation_ids import operation_ids
from app.api.router import API_ROUTERS
from app.core.config import Settings, get_settings
from app.core.database import create_engine, create_sessionmaker, reads_in_autocommit
from app.core.embedded import require_service_urls
from app.core.errors import EDGE_ERRORS
from app.core.heap import settle_startup_heap
from app.core.logging import configure_logging
from app.core.metrics import (
    APP_INFO,
    forget_this_worker,
    instrument_engine,
    sample_periodically,
)
from app.core.middleware import (
    AllowedHostsMiddleware,
    BodySizeLimitMiddleware,
    HeadMiddleware,
    JsonBodyMiddleware,
    ObservabilityMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from app.core.problems import (
    CatchAllMiddleware,
    install_error_handlers,
    problems_as_problem_json,
)
from app.core.ratelimit import RateLimiter, RateLimitMiddleware
from app.core.read_after import READ_AFTER_HEADER, ReadRoutingMiddleware
from app.core.redis import create_redis
from app.core.replicas import ReadRouting
from app.core.routes import RouteIndex
from app.domains import register_domain_constraints
from app.domains.auth.context import AuthContext
from app.domains.exchange.router import IMPORT_PATHS
from app.domains.user.bootstrap import ensure_superuser

logger = logging.getLogger("app")

API_PREFIX = "/api/v1"
# Probes and the scraper: never rate limited, and reached by pod IP whatever ALLOWED_HOSTS says.
PROBE_PATHS = (f"{API_PREFIX}/health", f"{API_PREFIX}/ready", METRICS_PATH)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application; the lifespan opens and closes PostgreSQL and Redis."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        resolved = require_service_urls(settings)
        engine = create_engine(resolved)
        sessionmaker = create_sessionmaker(engine)
        read_sessionmaker = create_sessionmaker(engine, autocommit=reads_in_autocommit(resolved))
        read_routing = ReadRouting.build(resolved, engine, sessionmaker, read_sessionmaker)
        redis = create_redis(resolved)
        auth = AuthContext.build(resolved, redis)
        rate_limiter = RateLimiter(
            redis, callers=auth.callers, key_prefix=resolved.redis_key_prefix
        )
        if resolved.metrics_enabled:
            instrument_engine(engine, max_overflow=resolved.db_max_overflow)
            APP_INFO.labels(version=__version__).set(1)
        if resolved.first_superuser_email and resolved.first_superuser_password:
            await ensure_superuser(
                sessionmaker,
                auth,
                email=resolved.first_superuser_email,
                password=resolved.first_superuser_password.get_secret_value(),
            )
        pool_sampler = (
            asyncio.create_task(sample_periodically(engine)) if resolved.metrics_enabled else None
        )
        if read_routing is not None:
            read_routing.start()
        settle_startup_heap()
        logger.info("started", extra={"version": __version__, "env": resolved.environment})
        try:
            yield {
                "settings": resolved,
                "engine": engine,
                "sessionmaker": sessionmaker,
                "read_sessionmaker": read_sessionmaker,
                "redis": redis,
                "auth": auth,
                "rate_limiter": rate_limiter,
                "read_routing": read_routing,
            }
        finally:
            if read_routing is not None:
                await read_routing.close()
            if pool_sampler is not None:
                pool_sampler.cancel()
                with suppress(asyncio.CancelledError):
                    await pool_sampler
            forget_this_worker()
            await redis.aclose()
            await engine.dispose()
            logger.info("stopped")

    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        debug=settings.debug,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        generate_unique_id_function=operation_ids(API_PREFIX),
        responses=EDGE_ERRORS,
    )
    register_domain_constraints()
    routes = RouteIndex(app.router.routes)
    install_error_handlers(app, routes=routes)
    _redirect_slashes_relatively(app.router)
    build_openapi = app.openapi
    app.openapi = lambda: problems_as_problem_json(build_openapi())  # type: ignore[method-assign]
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    if settings.metrics_enabled:
        app.include_router(metrics_router)
    swagger_ui = SwaggerUI(
        title=f"{app.title} - Swagger UI", openapi_url=f"{API_PREFIX}/openapi.json"
    )
    swagger_ui.install(app)
    _add_middleware(app, settings, swagger_ui, routes)
    return app


def _add_middleware(
    app: FastAPI, settings: Settings, swagger_ui: SwaggerUI, routes: RouteIndex
) -> None:
    """Wire the edge middleware (docs/observability.md lists the order and why)."""
    # Added innermost first: the last one added is the outermost. The access log, the
    # metrics and the security headers wrap the body limit and the rate limiter, so that
    # 413 and 429 answers are logged, counted and carry the headers like any other.
    app.add_middleware(HeadMiddleware)  # innermost: everything outside it sees HEAD
    if settings.database_read_url:
        # A read retried on the primary passes the rate limiter and the log once.
        app.add_middleware(ReadRoutingMiddleware, always_secure=settings.behind_https)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(JsonBodyMiddleware, routes=routes)
    if settings.rate_limit_enabled:
        app.add_middleware(
            RateLimitMiddleware,
            settings=settings,
            auth_prefix=f"{API_PREFIX}/auth/",
            exempt_paths=PROBE_PATHS,
        )
    if settings.max_body_bytes:
        app.add_middleware(
            BodySizeLimitMiddleware,
            max_bytes=settings.max_body_bytes,
            exempt_paths=[f"{API_PREFIX}{path}" for path in IMPORT_PATHS],
        )
    if settings.security_headers_enabled:
        app.add_middleware(
            SecurityHeadersMiddleware,
            docs_paths=swagger_ui.paths,
            docs_script_hashes=swagger_ui.script_hashes,
            hsts_max_age=settings.hsts_max_age_seconds,
            always_hsts=settings.behind_https,
        )
    if settings.access_log_enabled or settings.metrics_enabled:
        app.add_middleware(
            ObservabilityMiddleware,
            routes=routes,
            log_requests=settings.access_log_enabled,
            record_metrics=settings.metrics_enabled,
        )
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:
        read_after = [READ_AFTER_HEADER] if settings.database_read_url else []
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                "X-Request-ID",
                *read_after,
            ],
            expose_headers=[
                "ETag",
                "Location",
                "X-Request-ID",
                "Retry-After",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                *read_after,
            ],
        )
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if settings.allowed_hosts and "*" not in settings.allowed_hosts:
        app.add_middleware(
            AllowedHostsMiddleware,
            allowed_hosts=settings.allowed_hosts,
            exempt_paths=PROBE_PATHS,
        )


def _redirect_slashes_relatively(router: APIRouter) -> None:
    """Redirect `/users/` to `/users` (and back) with a Location never built from `Host`."""
    router.redirect_slashes = False
    not_found = router.default

    async def redirect_or_not_found(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else f"{path}/"
            moved = {**scope, "path": other}
            if any(route.matches(moved)[0] is not Match.NONE for route in router.routes):
                query = scope["query_string"].decode("latin-1")
                location = f"{other}?{query}" if query else other
                await RedirectResponse(location)(scope, receive, send)
                return
        await not_found(scope, receive, send)

    router.default = redirect_or_not_found


def create_configured_app() -> FastAPI:
    """Entry point for uvicorn workers: logging first, then the app."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
