"""The command line: `python -m app serve | migrate | create-superuser | seed`."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import build_parser, main
from app.core.config import Settings
from app.core.redis_version import (
    OLDEST_SUPPORTED_REDIS,
    RedisTooOld,
    check_redis_version,
    parse_redis_version,
    require_supported_redis,
)
from app.seed import DEFAULT_DEMO_PASSWORD, DEMO_ADMIN_EMAIL
from tests.conftest import TEST_SECRET


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


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [commands] = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    return dict(commands.choices)


def test_every_command_and_option_says_what_it_does_and_its_default() -> None:
    parser = build_parser()
    commands = _subcommands(parser)
    assert set(commands) == {"serve", "migrate", "create-superuser", "seed"}
    for name, command in commands.items():
        assert command.description, name
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, where
            if not action.required:
                assert "default" in action.help % vars(action), where


def test_serve_help_offers_reload_for_development(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert "--reload " in help_text
    assert "--reload-dir" in help_text


def test_reload_with_several_workers_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--reload", "--workers", "2"]) == 2
    assert "--reload" in capsys.readouterr().err


async def _seed_demo(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "app", "seed", "--demo"),
        cwd=cwd,  # no developer .env is read
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_seed_demo_says_what_it_made_and_how_to_sign_in(
    settings: Settings, clean: None, tmp_path: Path
) -> None:
    assert settings.database_url
    assert settings.redis_url
    demo_password = "a demo password from the environment"
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "SECRET_KEY": TEST_SECRET,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "LOG_JSON": "true",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "64",
        "PASSWORD_HASH_PARALLELISM": "1",
        "DEMO_PASSWORD": demo_password,
    }
    first = await _seed_demo(env, tmp_path)
    env.pop("DEMO_PASSWORD")
    second = await _seed_demo(env, tmp_path)

    code, out, err = first
    assert code == 0, err
    assert "Created the demo organisation:" in out
    assert "100 users" in out
    assert "500 processes" in out
    assert f"Sign in as {DEMO_ADMIN_EMAIL} with the password in DEMO_PASSWORD" in out
    assert demo_password not in out + err
    assert "SeedReport" not in out

    code, out, err = second
    assert code == 0, err
    assert "already there; nothing changed" in out
    assert "500 processes" in out
    assert DEMO_ADMIN_EMAIL in out
    assert DEFAULT_DEMO_PASSWORD in out
