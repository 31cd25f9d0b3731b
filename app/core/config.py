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
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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


def sentinel_address(entry: str) -> tuple[str, int]:
    """`"10.0.0.5:26379"` or `"[::1]:26379"` -> (host, port); ValueError naming the entry."""
    host, separator, port = entry.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"REDIS_SENTINELS entry {entry!r} is not host:port")
    return host, int(port)


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
    # With DB_PGBOUNCER, behind PgBouncer >= 1.21 with max_prepared_statements > 0: keep
    # asyncpg's named prepared statements, so PostgreSQL plans each statement once per
    # server connection instead of at every execution (docs/scaling.md).
    db_pgbouncer_prepared_statements: bool = False

    # Read replicas (docs/scaling.md, "Read replicas"): streaming replicas of DATABASE_URL,
    # comma-separated. GETs read from one that is up, at most DATABASE_READ_MAX_LAG_SECONDS
    # behind and past the client's last write; everything else uses the primary. Each worker
    # checks every replica's replay position each DATABASE_READ_POLL_SECONDS.
    database_read_url: CsvList = Field(default_factory=list)
    database_read_max_lag_seconds: float = Field(default=5.0, gt=0, le=3600)
    database_read_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    @field_validator("database_read_url", mode="before")
    @classmethod
    def _split_read_urls(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("database_read_url")
    @classmethod
    def _check_read_urls(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                make_url(entry)
            except (ArgumentError, ValueError):
                # The URL may carry a password: name its position, never its text.
                raise ValueError(
                    f"DATABASE_READ_URL entry {value.index(entry) + 1} is not a database URL"
                ) from None
        return value

    @model_validator(mode="after")
    def _check_read_replicas(self) -> Self:
        if not self.database_read_url:
            return self
        if not self.database_url:
            raise ValueError("DATABASE_READ_URL needs DATABASE_URL: replicas follow a primary")
        if self.database_read_poll_seconds >= self.database_read_max_lag_seconds:
            raise ValueError(
                "DATABASE_READ_POLL_SECONDS must be shorter than DATABASE_READ_MAX_LAG_SECONDS, "
                "or a replica's last check is always older than the lag it may have"
            )
        return self

    # Redis (None: an embedded server under DATA_DIR, refused in production)
    redis_url: str | None = None
    redis_key_prefix: str = "pa:"
    redis_socket_timeout: float = Field(default=2.0, gt=0, le=60)
    # Every request takes a connection for its rate-limit and token check, briefly: more
    # than the 20 a worker's database pool admits, so Redis is never the narrower gate.
    redis_max_connections: int = Field(default=50, ge=1, le=10_000)
    redis_pool_timeout: float = Field(default=5.0, gt=0, le=120)

    # Redis Sentinel (docs/operations.md, "Redis Sentinel"): both set, or neither. The
    # client asks the sentinels (host:port, comma-separated) for the primary of the service
    # REDIS_SENTINEL_MASTER; REDIS_URL stays unset and no embedded Redis starts.
    redis_sentinels: CsvList = Field(default_factory=list)
    redis_sentinel_master: str | None = None
    # The sentinels' own credentials, and the primary's and replicas' (without Sentinel,
    # they go in REDIS_URL).
    redis_sentinel_username: str | None = None
    redis_sentinel_password: SecretStr | None = None
    redis_sentinel_master_username: str | None = None
    redis_sentinel_master_password: SecretStr | None = None
    # Revocations and permission changes wait (WAIT) until this many replicas hold them, at
    # most REDIS_REVOCATION_WAIT_MS, so a failover cannot drop them once answered (None: 1
    # with Sentinel, 0 without; docs/reliability.md, "Redis failover").
    redis_revocation_replicas: int | None = Field(default=None, ge=0, le=16)
    redis_revocation_wait_ms: int = Field(default=500, ge=1, le=60_000)

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for entry in value:
            sentinel_address(entry)
        return value

    @model_validator(mode="after")
    def _check_redis_mode(self) -> Self:
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: set both")
        if self.redis_sentinels and self.redis_url:
            raise ValueError(
                "REDIS_URL and REDIS_SENTINELS are both set: a URL names one server, the "
                "sentinels name the primary; unset one"
            )
        if not self.redis_sentinels:
            stray = [
                name.upper()
                for name in (
                    "redis_sentinel_username",
                    "redis_sentinel_password",
                    "redis_sentinel_master_username",
                    "redis_sentinel_master_password",
                )
                if getattr(self, name) is not None
            ]
            if stray:
                raise ValueError(
                    f"{', '.join(stray)} only apply with REDIS_SENTINELS; "
                    "put REDIS_URL's credentials in the URL (redis://user:password@host/0)"
                )
        if self.revocation_replicas and self.redis_revocation_wait_ms >= (
            self.redis_socket_timeout * 1000
        ):
            raise ValueError(
                "REDIS_REVOCATION_WAIT_MS must be shorter than REDIS_SOCKET_TIMEOUT, "
                "or a slow replica turns every revocation into a timeout"
            )
        return self

    @property
    def uses_redis_sentinel(self) -> bool:
        return bool(self.redis_sentinels)

    @property
    def redis_sentinel_addresses(self) -> list[tuple[str, int]]:
        return [sentinel_address(entry) for entry in self.redis_sentinels]

    @property
    def revocation_replicas(self) -> int:
        """How many replicas a revocation waits for (REDIS_REVOCATION_REPLICAS resolved)."""
        if self.redis_revocation_replicas is not None:
            return self.redis_revocation_replicas
        return 1 if self.redis_sentinels else 0

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
    # Live (unrevoked, unexpired) API tokens one account may hold: each costs a row, a cached
    # copy in Redis and a secret to keep; a script minting tokens in a loop stops here.
    api_tokens_max_per_user: int = Field(default=100, ge=1, le=100_000)

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
        if not self.redis_url and not self.redis_sentinels:
            problems.append(
                "REDIS_URL is not set, nor REDIS_SENTINELS (the embedded Redis is for development)"
            )
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
