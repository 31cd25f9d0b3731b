"""`python -m app serve` with nothing configured: the embedded PostgreSQL and Redis.

The README's first command on a fresh machine. Both runs share one DATA_DIR, so the first
starts the servers from nothing (initdb, migrations) and the second reuses the data. An app
built without the URLs (not through the CLI) refuses to start instead of starting servers.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.core.embedded import ServiceUrlMissing
from app.main import create_app
from tests.conftest import make_settings
from tests.serving import Server, launched

# initdb, migrations and two servers on a busy two-core machine.
STARTUP_SECONDS = 120
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long passphrase for the embedded run"


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    # Not under pytest's base temporary directory: each pytest run makes that 0700 again,
    # and as root the embedded PostgreSQL runs as another user who must traverse the path.
    with tempfile.TemporaryDirectory(prefix="pa-embedded-") as directory:
        yield Path(directory)


def _environment(data_dir: Path) -> dict[str, str]:
    """This environment without any service URL, and a data directory of the test's own."""
    unset = ("DATABASE_URL", "REDIS_URL", "AUTO_MIGRATE", "PROMETHEUS_MULTIPROC_DIR")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update(
        ENVIRONMENT="development",
        DATA_DIR=str(data_dir),
        FIRST_SUPERUSER_EMAIL=ADMIN_EMAIL,
        FIRST_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        LOG_JSON="true",
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="64",
        PASSWORD_HASH_PARALLELISM="1",
    )
    return env


@contextmanager
def _serve_embedded(data_dir: Path, *, workers: int) -> Iterator[Server]:
    with launched(
        ["--workers", str(workers)],
        env=_environment(data_dir),
        data_dir=data_dir,
        log_name=f"server-{workers}.log",
        startup_seconds=STARTUP_SECONDS,
    ) as server:
        yield server


def _processes_mentioning(text: str) -> list[int]:
    """Ids of the live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command_line:
            found.append(int(entry.name))
    return found


def _embedded_redis_directory(log: str) -> str:
    marker = '"message": "embedded Redis ready", "socket": "'
    start = log.index(marker) + len(marker)
    return str(Path(log[start : log.index('"', start)]).parent)


async def test_an_app_without_a_database_url_refuses_to_start_and_starts_no_server(
    tmp_path: Path, redis_url: str
) -> None:
    app = create_app(make_settings(database_url=None, redis_url=redis_url, data_dir=tmp_path))
    with pytest.raises(ServiceUrlMissing, match="DATABASE_URL is not set"):
        async with LifespanManager(app):
            pass
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_with_nothing_configured_runs_on_the_embedded_servers(
    data_dir: Path, workers: int
) -> None:
    api = "/api/v1"
    with (
        _serve_embedded(data_dir, workers=workers) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        signed_in = client.post(
            f"{api}/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        wrong = client.post(
            f"{api}/auth/token", data={"username": ADMIN_EMAIL, "password": "not the password"}
        )
        assert signed_in.status_code == 200, signed_in.text
        assert wrong.status_code == 401, wrong.text
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
        created = client.post(
            f"{api}/departments", json={"name": f"Run with {workers}"}, headers=headers
        )
        assert created.status_code == 201, created.text
        listed = client.get(f"{api}/departments", headers=headers)
        assert created.json()["id"] in [item["id"] for item in listed.json()["items"]]

        redis_directory = _embedded_redis_directory(server.log())
        assert _processes_mentioning(str(data_dir / "postgres"))
        assert _processes_mentioning(redis_directory)

        server.process.send_signal(signal.SIGTERM)
        # An exit, not death by the signal: only an exit stops the embedded servers.
        assert server.process.wait(timeout=30) in {0, 128 + signal.SIGTERM}, server.log()

    assert "Traceback" not in server.log()
    assert _processes_mentioning(str(data_dir / "postgres")) == []
    assert _processes_mentioning(redis_directory) == []
