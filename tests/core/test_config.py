"""Settings validate at start-up and refuse insecure production values by name."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.core.config import DEFAULT_SECRET_KEY, Environment, Settings

SECURE: dict[str, Any] = {
    "environment": "production",
    "secret_key": "x" * 48,
    "database_url": "postgresql+asyncpg://app@db:5432/atlas",
    "redis_url": "redis://redis:6379/0",
    "debug": False,
}


def _settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{**SECURE, **overrides})  # type: ignore[call-arg]


def test_secure_production_settings_are_accepted() -> None:
    assert _settings().environment is Environment.PRODUCTION


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"secret_key": DEFAULT_SECRET_KEY}, "SECRET_KEY is the default"),
        ({"secret_key": "short-secret"}, "SECRET_KEY is shorter than 32"),
        ({"debug": True}, "DEBUG must be false"),
        ({"cors_origins": "*", "cors_allow_credentials": True}, "CORS_ORIGINS contains '*'"),
        ({"database_url": None}, "DATABASE_URL is not set"),
        ({"redis_url": None}, "REDIS_URL is not set"),
    ],
)
def test_production_refuses_insecure_value_and_names_it(
    overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        _settings(**overrides)


def test_development_accepts_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.should_auto_migrate


def test_lists_are_read_from_comma_separated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("ALLOWED_HOSTS", "api.example")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.allowed_hosts == ["api.example"]


def test_invalid_values_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="port"):
        Settings(_env_file=None, port=70000)  # type: ignore[call-arg]
