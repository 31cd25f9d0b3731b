"""The command line: `python -m app serve | migrate | create-superuser | seed`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.cli import build_parser, main
from app.core.redis_version import (
    OLDEST_SUPPORTED_REDIS,
    RedisTooOld,
    check_redis_version,
    parse_redis_version,
    require_supported_redis,
)


def test_every_documented_command_is_there() -> None:
    parser = build_parser()
    for argv in (
        ["serve"],
        ["migrate"],
        ["create-superuser", "--email", "a@b.c"],
        ["seed", "--demo"],
    ):
        assert parser.parse_args(argv).handler


def test_seed_without_a_kind_says_what_to_seed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed"]) == 2
    assert "--demo" in capsys.readouterr().err


def test_production_with_insecure_settings_refuses_to_start_and_names_them() -> None:
    env = {**os.environ, "ENVIRONMENT": "production", "SECRET_KEY": "short-but-secret"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "DATABASE_URL" in result.stderr
    assert "short-but-secret" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("version", ["5.0.14", "6.0.16", "6.1.9"])
def test_redis_older_than_6_2_is_refused_by_its_version(version: str) -> None:
    with pytest.raises(RedisTooOld, match=rf"Redis {version} is too old.*6\.2 or newer"):
        require_supported_redis(version)


@pytest.mark.parametrize("version", ["6.2.0", "6.2.14", "7.0.15", "7.4.2", "10.0.1", "8.2-rc1"])
def test_redis_6_2_and_newer_are_accepted(version: str) -> None:
    require_supported_redis(version)


def test_the_running_redis_version_is_read_from_the_server(redis_url: str) -> None:
    version = check_redis_version(redis_url, timeout=5)
    assert parse_redis_version(version) >= OLDEST_SUPPORTED_REDIS
