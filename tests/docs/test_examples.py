"""The shell examples of the docs run as written, in order, against a fresh server.

A ```bash block preceded by `<!-- expect: 201 200 -->` is an example: pasted into one shell
after the examples above it, its requests answer those HTTP statuses in that order, and it
exits 0 (`none`: it sends no request). Every block of docs/api.md is one; so is every block
of README.md that calls curl. The documented `http://127.0.0.1:8000` becomes the test
server's address; nothing else is rewritten.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from app.core.config import PROJECT_ROOT
from app.core.database import async_url, create_database_if_missing, drop_database
from app.core.errors import STATUSES
from app.core.migrations import upgrade
from tests.conftest import TEST_SECRET
from tests.serving import Server, serve

API_DOC = PROJECT_ROOT / "docs" / "api.md"
README = PROJECT_ROOT / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:8000"
BLOCK = re.compile(r"(?:<!-- expect: (?P<expect>[^>]*?) -->\n)?```bash\n(?P<code>.*?)```", re.S)
BLOCK_MARK = "@@example"
STATUS_MARK = "@@status"
# Every curl of the examples also reports its status on stderr, after a mark.
PREAMBLE = f"""set -euo pipefail
curl() {{ command curl -w '%{{stderr}}{STATUS_MARK} %{{http_code}}\\n' "$@"; }}
"""


@dataclass(frozen=True)
class Example:
    """A ```bash block: where it is, its code, the statuses its expect comment lists."""

    source: str
    line: int
    code: str
    expected: list[int] | None

    def __str__(self) -> str:
        return f"{self.source}:{self.line}"


def bash_blocks(path: Path) -> list[Example]:
    """Every ```bash block of `path`, with the statuses its expect comment lists (or None)."""
    text = path.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        expect = match["expect"]
        expected = None
        if expect is not None:
            expected = [] if expect.strip() == "none" else [int(s) for s in expect.split()]
        line = text.count("\n", 0, match.start("code"))
        blocks.append(Example(path.name, line + 1, match["code"], expected))
    return blocks


def examples(path: Path) -> list[Example]:
    """The blocks of `path` that say what they expect."""
    return [block for block in bash_blocks(path) if block.expected is not None]


def run_in_one_shell(
    blocks: list[Example], *, url: str, cwd: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], dict[int, list[int]]]:
    """Run the examples in order in one bash; the statuses each one's requests answered."""
    script = PREAMBLE + "".join(
        f"echo '{BLOCK_MARK} {index}' >&2\n{block.code.replace(DOCUMENTED_URL, url)}\n"
        for index, block in enumerate(blocks)
    )
    completed = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    statuses: dict[int, list[int]] = {}
    current = -1
    for line in completed.stderr.splitlines():
        if line.startswith(BLOCK_MARK):
            current = int(line.split()[1])
            statuses[current] = []
        elif line.startswith(STATUS_MARK):
            statuses.setdefault(current, []).append(int(line.split()[1]))
    return completed, statuses


def assert_examples_ran(
    blocks: list[Example],
    completed: subprocess.CompletedProcess[str],
    statuses: dict[int, list[int]],
    server: Server,
) -> None:
    """Each example answered what it expects, in order, and the shell exited 0."""
    for index, example in enumerate(blocks):
        answered = statuses.get(index)
        if answered != example.expected:
            outcome = "did not run" if answered is None else f"answered {answered}"
            pytest.fail(
                f"the example at {example} {outcome}, expected {example.expected}; "
                f"bash exited {completed.returncode}\n"
                f"--- example\n{example.code}--- stdout\n{completed.stdout[-3000:]}\n"
                f"--- stderr\n{completed.stderr[-3000:]}\n--- server\n{server.log()[-2000:]}"
            )
    assert completed.returncode == 0, completed.stderr[-3000:]


@dataclass(frozen=True)
class DocsServer:
    """The server the examples talk to, and where and with what environment they run."""

    server: Server
    shell_dir: Path
    env: dict[str, str]


@pytest.fixture
def docs_server(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[DocsServer]:
    """A server on a fresh, migrated, empty database, and a shell set up like a reader's."""
    for tool in ("curl", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"the examples need {tool}, which is not installed")
    name = f"pa_docs_{uuid.uuid4().hex[:8]}"
    url = async_url(database_url).set(database=name).render_as_string(hide_password=False)
    asyncio.run(create_database_if_missing(url))
    upgrade(url)
    # The docs run `.venv/bin/python` from the project's root; here it is this interpreter,
    # from a directory without the developer's `.env`.
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    try:
        with serve(tmp_path, url, redis_url, workers=1) as server:
            env = {
                key: value
                for key, value in os.environ.items()
                if "PROMETHEUS" not in key and key != "DEMO_PASSWORD"
            }
            env.update(
                ENVIRONMENT="test",
                SECRET_KEY=TEST_SECRET,
                DATABASE_URL=url,
                REDIS_URL=redis_url,
                REDIS_KEY_PREFIX=server.key_prefix,
                DATA_DIR=str(tmp_path),
                AUTO_MIGRATE="false",
            )
            try:
                yield DocsServer(server, tmp_path, env)
            finally:
                _delete_keys(redis_url, server.key_prefix)
    finally:
        asyncio.run(drop_database(url))


def _delete_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_every_block_of_the_api_docs_is_a_checked_example() -> None:
    unchecked = [str(block) for block in bash_blocks(API_DOC) if block.expected is None]
    assert not unchecked, f"add <!-- expect: ... --> above the blocks at {unchecked}"


def test_every_curl_block_of_the_readme_is_a_checked_example() -> None:
    unchecked = [
        str(block)
        for block in bash_blocks(README)
        if "curl" in block.code and block.expected is None
    ]
    assert not unchecked, f"add <!-- expect: ... --> above the blocks at {unchecked}"


def test_the_sample_problem_has_the_title_the_server_sends() -> None:
    sample = re.search(r"```json\n(\{.*?\})\n```", API_DOC.read_text(), re.S)
    assert sample is not None
    problem = json.loads(sample[1])
    assert problem["title"] == STATUSES[problem["status"]].title


@pytest.mark.slow
def test_api_examples_run_in_order_against_a_fresh_server(docs_server: DocsServer) -> None:
    blocks = examples(API_DOC)
    completed, statuses = run_in_one_shell(
        blocks, url=docs_server.server.url, cwd=docs_server.shell_dir, env=docs_server.env
    )
    assert_examples_ran(blocks, completed, statuses, docs_server.server)


@pytest.mark.slow
def test_readme_examples_run_in_order_against_a_fresh_server(docs_server: DocsServer) -> None:
    blocks = examples(README)
    assert blocks
    completed, statuses = run_in_one_shell(
        blocks, url=docs_server.server.url, cwd=docs_server.shell_dir, env=docs_server.env
    )
    assert_examples_ran(blocks, completed, statuses, docs_server.server)
