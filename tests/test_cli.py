"""The command line: `python -m app serve | migrate | create-superuser | seed`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.cli import build_parser, main


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
