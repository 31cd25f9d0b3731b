"""Settings validate at start-up and refuse insecure production values by name."""

from __future__ import annotations

import random
import re
import secrets
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from app.core.config import (
    DEFAULT_SECRET_KEY,
    MIN_SECRET_BITS,
    MIN_SECRET_DISTINCT_CHARACTERS,
    PROJECT_ROOT,
    Environment,
    Settings,
    estimated_entropy_bits,
)

SECURE: dict[str, Any] = {
    "environment": "production",
    "secret_key": "Qm3vJ8xT2pLw9ZrB7nYc4KdF6hGs1AeU5oXi0tRq",
    "database_url": "postgresql+asyncpg://app@db:5432/atlas",
    "redis_url": "redis://redis:6379/0",
    "allowed_hosts": "api.example",
    "metrics_token": "mT7qW2zK9vB4nX8cR3jL6pF1sD5gH0yAeU",
    "debug": False,
}
PATTERNED_KEYS = [
    "a" * 32,
    "ab" * 24,
    "abcdefgh" * 5,
    "0123456789" * 4,
    "0123456789abcdef" * 2,
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "zyxwvutsrqponmlkjihgfedcba9876543210",
    "aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpP",
    "Password123!Password123!Password123!",
    "Xk9pQ2mL7vR4Xk9pQ2mL7vR4Xk9pQ2mL7vR4",
    "passwordpasswordpasswordpassword",
]


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
        ({"cors_origins": "*", "cors_allow_credentials": True}, "CORS_ORIGINS contains '\\*'"),
        (
            {"cors_origins": "https://app.example,null", "cors_allow_credentials": True},
            "CORS_ORIGINS contains 'null'",
        ),
        ({"allowed_hosts": "*"}, "ALLOWED_HOSTS"),
        ({"allowed_hosts": "api.example,*"}, "ALLOWED_HOSTS"),
        ({"metrics_token": None}, "METRICS_TOKEN is not set"),
        ({"metrics_token": "scrape-scrape-scrape-scrape-scrape"}, "METRICS_TOKEN"),
        ({"database_url": None}, "DATABASE_URL is not set"),
        ({"redis_url": None}, "REDIS_URL is not set"),
    ],
)
def test_production_refuses_insecure_value_and_names_it(
    overrides: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValidationError, match=named):
        _settings(**overrides)


def test_production_defaults_are_refused_by_name() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    message = refused.value.errors()[0]["msg"]
    for name in ("SECRET_KEY", "ALLOWED_HOSTS", "METRICS_TOKEN", "DATABASE_URL", "REDIS_URL"):
        assert name in message


@pytest.mark.parametrize("key", PATTERNED_KEYS)
def test_production_refuses_a_repeated_or_patterned_secret_key(key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY") as refused:
        _settings(secret_key=key)
    assert key not in refused.value.errors()[0]["msg"]


def test_random_secret_keys_are_accepted() -> None:
    keys = [secrets.token_urlsafe(32) for _ in range(200)]
    keys += [secrets.token_hex(32) for _ in range(200)]  # what `openssl rand -hex 32` prints
    keys += [secrets.token_hex(16) for _ in range(200)]  # 32 characters, 128 random bits
    keys.append("43327e4eb878e4b52b458a3e77737843")  # 9 distinct characters: refused once
    refused = [key for key in keys if _settings(secret_key=key).insecure_settings()]
    assert refused == []


def test_the_weakest_random_keys_keep_a_margin() -> None:
    """A fixed sample, so the margin is checked without depending on luck.

    20,000 draws of 32 hex characters (`openssl rand -hex 16`), the weakest format we accept:
    none close to the threshold, and none with few distinct characters.
    """
    draws = random.Random(20261130)
    keys = [f"{draws.getrandbits(128):032x}" for _ in range(20_000)]
    assert min(estimated_entropy_bits(key) for key in keys) > MIN_SECRET_BITS + 15
    assert min(len(set(key)) for key in keys) > MIN_SECRET_DISTINCT_CHARACTERS + 1


def test_the_null_origin_is_accepted_without_credentials() -> None:
    assert _settings(cors_origins="null").cors_origins == ["null"]


def test_production_without_metrics_needs_no_metrics_token() -> None:
    assert not _settings(metrics_enabled=False, metrics_token=None).metrics_enabled


def _interpolate(value: str, required: dict[str, str]) -> str:
    """Compose-style `${NAME:-default}` and `${NAME:?error}` as a user who set `required`."""

    def one(match: re.Match[str]) -> str:
        name, operator, fallback = match.group(1), match.group(2), match.group(3)
        if operator == ":?":
            return required[name]
        return fallback

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, value)


def test_the_compose_api_environment_starts_in_production() -> None:
    environment: dict[str, Any] = {}
    for layer in ("compose.yaml", "docker/docker-compose.yml"):  # production's override last
        compose = yaml.safe_load((PROJECT_ROOT / layer).read_text())
        environment.update(compose["services"]["api"]["environment"])
    required = {"SECRET_KEY": secrets.token_urlsafe(32), "METRICS_TOKEN": secrets.token_hex(32)}
    values = {
        name.lower(): _interpolate(str(value), required)
        for name, value in environment.items()
        if value is not None
    }
    assert values["environment"] == "production"
    assert Settings(_env_file=None, **values).insecure_settings() == []  # type: ignore[call-arg]


def _kubernetes(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (PROJECT_ROOT / "docker/kubernetes" / name).read_text()
    )
    return document


@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_the_kubernetes_configuration_starts_in_production(overlay: str) -> None:
    values = {
        **_kubernetes("base/configmap.yaml")["data"],
        **_kubernetes("base/secret.example.yaml")["stringData"],
        # What the operator creates out of band, as the example's comment shows.
        "SECRET_KEY": secrets.token_urlsafe(48),
        "METRICS_TOKEN": secrets.token_urlsafe(32),
    }
    for generator in _kubernetes(f"{overlay}/kustomization.yaml").get("configMapGenerator", []):
        values.update(literal.split("=", 1) for literal in generator["literals"])
    settings = Settings(_env_file=None, **{name.lower(): v for name, v in values.items()})  # type: ignore[call-arg]
    assert settings.is_production
    assert settings.insecure_settings() == []


def test_the_kubernetes_example_secret_is_refused_until_replaced() -> None:
    values = {
        **_kubernetes("base/configmap.yaml")["data"],
        **_kubernetes("base/secret.example.yaml")["stringData"],
    }
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, **{name.lower(): v for name, v in values.items()})  # type: ignore[call-arg]
    message = refused.value.errors()[0]["msg"]
    assert "SECRET_KEY" in message
    assert "METRICS_TOKEN" in message


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
