"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from app import __version__
from app.api.router import api_router
from app.core.config import Settings, get_settings
from app.core.database import create_engine, create_sessionmaker
from app.core.embedded import resolve_service_urls
from app.core.errors import CatchAllMiddleware, ProblemDetail, install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RequestIdMiddleware
from app.core.redis import create_redis
from app.domains.auth.context import AuthContext
from app.domains.user.bootstrap import ensure_superuser

logger = logging.getLogger("app")

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application; the lifespan opens and closes PostgreSQL and Redis."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        resolved = resolve_service_urls(settings)
        engine = create_engine(resolved)
        sessionmaker = create_sessionmaker(engine)
        redis = create_redis(resolved)
        auth = AuthContext.build(resolved, redis)
        if resolved.first_superuser_email and resolved.first_superuser_password:
            await ensure_superuser(
                sessionmaker,
                auth,
                email=resolved.first_superuser_email,
                password=resolved.first_superuser_password.get_secret_value(),
            )
        logger.info("started", extra={"version": __version__, "env": resolved.environment})
        try:
            yield {
                "settings": resolved,
                "engine": engine,
                "sessionmaker": sessionmaker,
                "redis": redis,
                "auth": auth,
            }
        finally:
            await redis.aclose()
            await engine.dispose()
            logger.info("stopped")

    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        debug=settings.debug,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        responses={
            422: {"model": ProblemDetail, "description": "The request is not valid."},
        },
    )
    install_error_handlers(app)
    app.include_router(api_router, prefix=API_PREFIX)

    # Added innermost first: the last one added is the outermost.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(RequestIdMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "X-Request-ID"],
            expose_headers=["ETag", "Location", "X-Request-ID", "Retry-After"],
        )
    if settings.allowed_hosts and settings.allowed_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    return app


def create_configured_app() -> FastAPI:
    """Entry point for uvicorn workers: logging first, then the app."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
