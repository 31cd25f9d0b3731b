"""`python -m app serve | migrate | create-superuser | seed`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from app.core.config import Settings, get_settings
from app.core.embedded import resolve_service_urls
from app.core.logging import configure_logging

logger = logging.getLogger("app.cli")


def _prepare() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return resolve_service_urls(settings)


def serve(args: argparse.Namespace) -> int:
    """Start uvicorn with workers, host and port from settings (migrating first if asked)."""
    import uvicorn

    from app.core import migrations

    settings = _prepare()
    port = args.port or settings.port
    workers = args.workers or settings.workers
    _prepare_metrics_dir(settings, workers=workers, port=port)
    if settings.should_auto_migrate or args.migrate:
        assert settings.database_url
        migrations.upgrade(settings.database_url)
    uvicorn.run(
        "app.main:create_configured_app",
        factory=True,
        host=args.host or settings.host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        # On SIGTERM: stop accepting, let in-flight requests finish for this long, then
        # run the lifespan shutdown (engine and Redis close).
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
    )
    return 0


def _prepare_metrics_dir(settings: Settings, *, workers: int, port: int) -> None:
    """Give prometheus-client's multiprocess mode an empty directory before workers start.

    Set before anything imports prometheus_client (it picks its mode at import); workers
    inherit it. Several workers without a configured directory get one under DATA_DIR.
    """
    directory = settings.prometheus_multiproc_dir
    if directory is None:
        if workers == 1:
            return
        directory = settings.data_dir / "prometheus" / str(port)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    logger.info("metrics: multiprocess mode", extra={"directory": str(directory)})


def migrate(args: argparse.Namespace) -> int:
    """Apply migrations up to a revision (head by default)."""
    from app.core import migrations

    settings = _prepare()
    assert settings.database_url
    migrations.upgrade(settings.database_url, args.revision)
    logger.info("migrated", extra={"revision": args.revision})
    return 0


def create_superuser(args: argparse.Namespace) -> int:
    """Create a superuser (if none exists) from --email and a password from the environment."""
    import asyncio
    import getpass
    import os

    from redis.asyncio import Redis

    from app.core.database import create_engine, create_sessionmaker
    from app.domains.auth.context import AuthContext
    from app.domains.user.bootstrap import ensure_superuser

    settings = _prepare()
    password = os.environ.get("SUPERUSER_PASSWORD") or (
        settings.first_superuser_password.get_secret_value()
        if settings.first_superuser_password
        else None
    )
    if not password:
        if not sys.stdin.isatty():
            print("error: set SUPERUSER_PASSWORD (no terminal to ask on)", file=sys.stderr)
            return 2
        password = getpass.getpass("Password: ")

    async def run() -> bool:
        engine = create_engine(settings)
        redis = Redis.from_url(settings.redis_url or "redis://")
        try:
            auth = AuthContext.build(settings, redis)
            return await ensure_superuser(
                create_sessionmaker(engine),
                auth,
                email=args.email,
                password=password,
                full_name=args.full_name,
            )
        finally:
            await redis.aclose()
            await engine.dispose()

    created = asyncio.run(run())
    print("superuser created" if created else "a superuser already exists; nothing changed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the HTTP API")
    serve_cmd.add_argument("--host")
    serve_cmd.add_argument("--port", type=int)
    serve_cmd.add_argument("--workers", type=int)
    serve_cmd.add_argument("--migrate", action="store_true", help="migrate before serving")
    serve_cmd.set_defaults(handler=serve)

    migrate_cmd = commands.add_parser("migrate", help="apply database migrations")
    migrate_cmd.add_argument("revision", nargs="?", default="head")
    migrate_cmd.set_defaults(handler=migrate)

    superuser_cmd = commands.add_parser(
        "create-superuser", help="create the first superuser (password: SUPERUSER_PASSWORD)"
    )
    superuser_cmd.add_argument("--email", required=True)
    superuser_cmd.add_argument("--full-name", default="Administrator")
    superuser_cmd.set_defaults(handler=create_superuser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # configuration errors read better without a traceback
        if isinstance(error, ValueError) and "ENVIRONMENT=production" in str(error):
            print(f"error: {error}", file=sys.stderr)
            return 2
        raise
