"""`python -m app serve | migrate | create-superuser | seed`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from app.core.config import Settings, get_settings
from app.core.embedded import EmbeddedServerMissing, resolve_service_urls, started_here
from app.core.logging import configure_logging
from app.core.redis_version import RedisTooOld

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from app.domains.auth.context import AuthContext
    from app.seed import SeedReport

logger = logging.getLogger("app.cli")

APP_DIRECTORY = Path(__file__).resolve().parent


def _prepare() -> Settings:
    """Settings with both service URLs, embedded servers started where none is configured."""
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return resolve_service_urls(settings)


def serve(args: argparse.Namespace) -> int:
    """Start uvicorn with workers, host and port from settings (migrating first if asked)."""
    import uvicorn

    from app.core import migrations

    if args.reload and (args.workers or 1) > 1:
        print("error: --reload runs one worker; leave out --workers", file=sys.stderr)
        return 2
    settings = _prepare()
    if started_here():
        signal.signal(signal.SIGTERM, _exit_through_cleanup)
    _check_redis_version(settings)
    port = args.port or settings.port
    workers = 1 if args.reload else args.workers or settings.workers
    _prepare_metrics_dir(settings, workers=workers, port=port)
    if settings.should_auto_migrate or args.migrate:
        assert settings.database_url
        migrations.upgrade(settings.database_url)
    _hand_urls_to_the_app(settings)
    uvicorn.run(
        "app.main:create_configured_app",
        factory=True,
        host=args.host or settings.host,
        port=port,
        workers=workers,
        # The reloader runs the app in a child process that it restarts on each change; the
        # child inherits the environment, and with it the URLs handed over above.
        reload=args.reload,
        reload_dirs=[str(path) for path in args.reload_dir or [APP_DIRECTORY]],
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


def _exit_through_cleanup(signum: int, _: object) -> None:
    """SIGTERM as a normal exit, so the embedded servers this process started are stopped.

    uvicorn re-raises the signal after its graceful shutdown; with the default handler the
    process would die on the spot and leave the servers running.
    """
    raise SystemExit(128 + signum)


def _check_redis_version(settings: Settings) -> None:
    """Refuse a Redis older than the oldest supported one; one that does not answer yet passes."""
    from redis.exceptions import RedisError

    from app.core.redis_version import check_redis_version, require_supported_redis

    try:
        if settings.redis_url:
            version = check_redis_version(settings.redis_url, timeout=settings.redis_socket_timeout)
        else:  # Sentinel: the primary the sentinels name
            import asyncio

            from app.core.redis import redis_version

            version = asyncio.run(redis_version(settings))
            require_supported_redis(version)
    except RedisError as error:
        logger.warning("redis: no answer, version not checked", extra={"error": repr(error)})
        return
    logger.info("redis: version supported", extra={"version": version})


def _hand_urls_to_the_app(settings: Settings) -> None:
    """Make the resolved service URLs the settings that uvicorn's app factory reads.

    Through the environment: the workers are new processes that inherit it. The app itself
    never starts servers (`require_service_urls`).
    """
    assert settings.database_url
    os.environ["DATABASE_URL"] = settings.database_url
    if settings.redis_url:  # none with REDIS_SENTINELS, which the workers read themselves
        os.environ["REDIS_URL"] = settings.redis_url
    get_settings.cache_clear()


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


@asynccontextmanager
async def _toolkit(
    settings: Settings,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], AuthContext]]:
    """A sessionmaker and an auth toolkit for one command, closed afterwards."""
    from app.core.database import create_engine, create_sessionmaker
    from app.core.redis import create_redis
    from app.domains.auth.context import AuthContext

    engine = create_engine(settings)
    redis = create_redis(settings)
    try:
        yield create_sessionmaker(engine), AuthContext.build(settings, redis)
    finally:
        await redis.aclose()
        await engine.dispose()


def seed(args: argparse.Namespace) -> int:
    """Load the demo organisation (idempotent: a second run changes nothing)."""
    import asyncio

    from app.seed import seed_demo

    if not args.demo:
        print("error: say what to seed: --demo", file=sys.stderr)
        return 2
    settings = _prepare()

    async def run() -> SeedReport:
        async with _toolkit(settings) as (sessionmaker, auth):
            return await seed_demo(sessionmaker, auth)

    report = asyncio.run(run())
    print(_describe_seed(report, password_set=bool(os.environ.get("DEMO_PASSWORD"))))
    return 0


def _describe_seed(report: SeedReport, *, password_set: bool) -> str:
    """What the seed made (or found) and how to sign in; never a password from the environment."""
    from app.seed import DEFAULT_DEMO_PASSWORD, DEMO_ADMIN_EMAIL

    counts = ", ".join(
        f"{getattr(report, field.name)} {field.name}"
        for field in fields(report)
        if field.name != "created"
    )
    if not report.created:
        summary = f"The demo organisation is already there; nothing changed ({counts})."
        password = (
            "the password it was seeded with: DEMO_PASSWORD at the time, "
            f"else the default {DEFAULT_DEMO_PASSWORD}"
        )
    else:
        summary = f"Created the demo organisation: {counts}."
        password = (
            "the password in DEMO_PASSWORD"
            if password_set
            else f"the default demo password {DEFAULT_DEMO_PASSWORD} (DEMO_PASSWORD sets another)"
        )
    return (
        f"{summary}\nSign in as {DEMO_ADMIN_EMAIL} with {password}.\n"
        "Every demo user has that password; the admin is a superuser."
    )


def create_superuser(args: argparse.Namespace) -> int:
    """Create a superuser (if none exists) from --email and a password from the environment."""
    import asyncio
    import getpass

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
        async with _toolkit(settings) as (sessionmaker, auth):
            return await ensure_superuser(
                sessionmaker, auth, email=args.email, password=password, full_name=args.full_name
            )

    created = asyncio.run(run())
    print("superuser created" if created else "a superuser already exists; nothing changed")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Serve, migrate, create a superuser or seed demo data. Settings come from "
        "the environment and .env (.env.example lists them); with no DATABASE_URL or REDIS_URL, "
        "embedded servers start under DATA_DIR.",
        epilog="`python -m app COMMAND --help` describes a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_cmd = _command(commands, "serve", serve, "run the HTTP API with uvicorn")
    serve_cmd.add_argument(
        "--host", help=f"address to listen on (default: HOST, else {_default('host')})"
    )
    serve_cmd.add_argument(
        "--port", type=int, help=f"port to listen on (default: PORT, else {_default('port')})"
    )
    serve_cmd.add_argument(
        "--workers",
        type=int,
        help=f"worker processes (default: WORKERS, else {_default('workers')}; 1 with --reload)",
    )
    serve_cmd.add_argument(
        "--migrate",
        action="store_true",
        help="apply migrations before serving (default: AUTO_MIGRATE, on in development)",
    )
    serve_cmd.add_argument(
        "--reload",
        action="store_true",
        help="restart the app when a .py file changes; one worker, for development (default: off)",
    )
    serve_cmd.add_argument(
        "--reload-dir",
        action="append",
        type=Path,
        metavar="DIR",
        help="a directory --reload watches, repeatable (default: the app package, "
        f"{APP_DIRECTORY})",
    )

    migrate_cmd = _command(commands, "migrate", migrate, "apply database migrations")
    migrate_cmd.add_argument(
        "revision", nargs="?", default="head", help="the revision to stop at (default: %(default)s)"
    )

    superuser_cmd = _command(
        commands,
        "create-superuser",
        create_superuser,
        "create the first superuser (password: SUPERUSER_PASSWORD, else asked)",
    )
    superuser_cmd.add_argument("--email", required=True, help="the superuser's email address")
    superuser_cmd.add_argument(
        "--full-name", default="Administrator", help="the superuser's name (default: %(default)s)"
    )

    seed_cmd = _command(commands, "seed", seed, "load demo data")
    seed_cmd.add_argument(
        "--demo",
        action="store_true",
        help="the demo organisation; its users' password is DEMO_PASSWORD, else "
        "the documented default (default: off)",
    )
    return parser


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Callable[[argparse.Namespace], int],
    summary: str,
) -> argparse.ArgumentParser:
    """A subcommand whose one-line summary is its help in the list and its description."""
    command = commands.add_parser(name, help=summary, description=f"{summary}.")
    command.set_defaults(handler=handler)
    return command


def _default(setting: str) -> object:
    """The built-in default of a setting, without reading the environment."""
    return Settings.model_fields[setting].default


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130
    except ValidationError as error:
        # Only where and why: pydantic's own message would echo the values, SECRET_KEY too.
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]).upper() or "settings"
            print(f"error: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    except (EmbeddedServerMissing, RedisTooOld) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
