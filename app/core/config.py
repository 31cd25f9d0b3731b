"""Settings: every knob comes from the environment or `.env`, validated at start-up."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from ipaddress import ip_network
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SECRET_KEY = "change-me-in-production-please-32-chars"  # noqa: S105 (a known-insecure default)
MIN_SECRET_KEY_LENGTH = 32
# What a production secret needs (estimated_entropy_bits). The weakest random key we accept,
# `openssl rand -hex 16` (32 hex characters), estimates 108 bits at the median, under 76 once
# in a million draws and about 5 bits less per further factor of 10: under 56 roughly once in
# 10^10. `secrets.token_urlsafe(32)` never went under 170. Repeated (abcabc), stepped (abcdef,
# 0123) and short repeated blocks (Password123! x 3) estimate at most 41. Six distinct
# characters: 32 hex characters have five or fewer about once in 4 x 10^12.
MIN_SECRET_BITS = 56
MIN_SECRET_DISTINCT_CHARACTERS = 6


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _shannon_bits(symbols: Sequence[object]) -> float:
    counts = Counter(symbols).values()
    return -sum(n / len(symbols) * math.log2(n / len(symbols)) for n in counts)


def estimated_entropy_bits(secret: str) -> float:
    """Bits per character (the lower of character and step entropy) times distinct trigrams."""
    # Steps between neighbours expose sequences, which have one step; counting a trigram
    # once counts a repeated block once.
    steps = [ord(after) - ord(before) for before, after in pairwise(secret)]
    per_character = min(_shannon_bits(secret), _shannon_bits(steps)) if steps else 0.0
    distinct_runs = {secret[i : i + 3] for i in range(len(secret) - 2)}
    return per_character * len(distinct_runs)


def _weak_secret(name: str, secret: str) -> str | None:
    """Why `secret` is too weak for production, or None; never the secret itself."""
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        return f"{name} is shorter than {MIN_SECRET_KEY_LENGTH} characters"
    if (
        len(set(secret)) < MIN_SECRET_DISTINCT_CHARACTERS
        or estimated_entropy_bits(secret) < MIN_SECRET_BITS
    ):
        return (
            f"{name} is repeated or patterned (under {MIN_SECRET_BITS} bits estimated); "
            "generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return None


CsvList = Annotated[list[str], NoDecode]
RateLimitSpec = Annotated[str, Field(pattern=r"^[1-9][0-9]*/(second|minute|hour|day)$")]


class Settings(BaseSettings):
    """Process-wide configuration; see `.env.example` for every variable."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # Application
    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    app_name: str = "Process Atlas"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_json: bool = True

    # Server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=2, ge=1, le=64)
    graceful_shutdown_seconds: int = Field(default=20, ge=0, le=600)
    auto_migrate: bool | None = None  # None: on in development, off elsewhere
    data_dir: Path = PROJECT_ROOT / ".data"

    # PostgreSQL (None: an embedded server under DATA_DIR, refused in production)
    database_url: str | None = None
    db_pool_size: int = Field(default=15, ge=1, le=200)
    db_max_overflow: int = Field(default=5, ge=0, le=200)
    db_pool_timeout: float = Field(default=5.0, gt=0, le=120)
    db_pool_recycle: int = Field(default=1800, ge=-1)
    db_pool_pre_ping: bool = True
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    # max_parallel_workers_per_gather of the app's sessions. 0: a page of 50 rows never
    # waits for parallel workers to start (docs/benchmarks.md, change 13).
    db_parallel_workers: int = Field(default=0, ge=0, le=64)
    db_connect_timeout: float = Field(default=5.0, gt=0, le=60)
    db_echo: bool = False
    # Through PgBouncer in transaction pooling mode: no statement caches, uniquely named
    # prepared statements, no session settings at connect (docs/scaling.md).
    db_pgbouncer: bool = False

    # Redis (None: an embedded server under DATA_DIR, refused in production)
    redis_url: str | None = None
    redis_key_prefix: str = "pa:"
    redis_socket_timeout: float = Field(default=2.0, gt=0, le=60)
    # Every request takes a connection for its rate-limit and token check, briefly: more
    # than the 20 a worker's database pool admits, so Redis is never the narrower gate.
    redis_max_connections: int = Field(default=50, ge=1, le=10_000)
    redis_pool_timeout: float = Field(default=5.0, gt=0, le=120)

    # Passwords (argon2id; defaults are RFC 9106's low-memory profile)
    password_hash_time_cost: int = Field(default=3, ge=1, le=20)
    password_hash_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    password_hash_parallelism: int = Field(default=4, ge=1, le=64)
    password_hash_concurrency: int = Field(default=1, ge=1, le=64)
    # Linux nice value of the hashing threads: logins take the CPU other requests leave.
    password_hash_niceness: int = Field(default=10, ge=0, le=19)
    password_min_length: int = Field(default=12, ge=8, le=128)
    password_max_length: int = Field(default=128, ge=8, le=1024)

    # Tokens
    jwt_algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"] = "HS256"
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "process-atlas"
    jwt_audience: str = "process-atlas-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    api_token_max_days: int = Field(default=365, ge=1, le=3650)

    # Login throttling (counted in Redis)
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_ip: int = Field(default=50, ge=1)

    # First superuser, created at start-up when no superuser exists
    first_superuser_email: str | None = None
    first_superuser_password: SecretStr | None = None

    # Readiness
    ready_timeout: float = Field(default=2.0, gt=0, le=30)

    # HTTP edge
    cors_origins: CsvList = Field(default_factory=list)
    cors_allow_credentials: bool = False
    allowed_hosts: CsvList = Field(default_factory=lambda: ["*"])

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        return _split_csv(value)

    # Edge: body limit, rate limits, security headers, access log and metrics
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)  # 0: no limit
    # Bulk import (POST /{collection}/import): its own limits, in place of MAX_BODY_BYTES.
    import_max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    import_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    # Exports one worker streams at once: each holds a database connection for its whole
    # download, so a few slow readers must not take the pool from every other request.
    export_max_concurrent: int = Field(default=4, ge=1, le=100)
    rate_limit_enabled: bool = True
    rate_limit_default: RateLimitSpec = "300/minute"
    rate_limit_auth: RateLimitSpec = "60/minute"
    trusted_proxies: CsvList = Field(default_factory=list)
    security_headers_enabled: bool = True
    behind_https: bool = False
    hsts_max_age_seconds: int = Field(default=31_536_000, ge=0)
    access_log_enabled: bool = True
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None
    prometheus_multiproc_dir: Path | None = None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            ip_network(entry, strict=False)
        return value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if not self.jwt_algorithm.startswith("HS") and not (
            self.jwt_private_key_file and self.jwt_public_key_file
        ):
            raise ValueError(
                f"JWT_ALGORITHM={self.jwt_algorithm} needs JWT_PRIVATE_KEY_FILE "
                "and JWT_PUBLIC_KEY_FILE"
            )
        if self.password_min_length > self.password_max_length:
            raise ValueError("PASSWORD_MIN_LENGTH is greater than PASSWORD_MAX_LENGTH")
        return self

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Self:
        if self.environment is not Environment.PRODUCTION:
            return self
        problems = self.insecure_settings()
        if problems:
            raise ValueError(
                "refusing to start with ENVIRONMENT=production: " + "; ".join(problems)
            )
        return self

    def insecure_settings(self) -> list[str]:
        """Name every setting that is unsafe for production."""
        problems: list[str] = []
        secret = self.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET_KEY:
            problems.append("SECRET_KEY is the default value; set a random one")
        elif weakness := _weak_secret("SECRET_KEY", secret):
            problems.append(weakness)
        if self.debug:
            problems.append("DEBUG must be false")
        if self.cors_allow_credentials:
            problems.extend(
                f"CORS_ORIGINS contains '{origin}' while CORS_ALLOW_CREDENTIALS is true; "
                "list the origins"
                for origin in ("*", "null")
                if origin in self.cors_origins
            )
        if "*" in self.allowed_hosts:
            problems.append("ALLOWED_HOSTS is '*'; list the host names clients and probes use")
        if self.metrics_enabled:
            if self.metrics_token is None:
                problems.append(
                    "METRICS_TOKEN is not set while METRICS_ENABLED is true; "
                    "set a token for the scraper or METRICS_ENABLED=false"
                )
            elif weakness := _weak_secret("METRICS_TOKEN", self.metrics_token.get_secret_value()):
                problems.append(weakness)
        if not self.database_url:
            problems.append("DATABASE_URL is not set (the embedded PostgreSQL is for development)")
        if not self.redis_url:
            problems.append("REDIS_URL is not set (the embedded Redis is for development)")
        return problems

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def should_auto_migrate(self) -> bool:
        if self.auto_migrate is None:
            return self.environment is Environment.DEVELOPMENT
        return self.auto_migrate


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
