"""Password hashing (argon2id) and access tokens (JWT): primitives with no HTTP or database."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.config import Settings

T = TypeVar("T")

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 (a claim value, not a secret)
CLOCK_LEEWAY_SECONDS = 5
# Tokens whose signature and claims were verified, per process: a client's next requests
# skip the signature check (about 50 us) and only the expiry is checked again.
VERIFIED_TOKENS_CACHED = 4096


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for something else."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str  # the refresh-token family this access token was issued in
    jti: str
    issued_at: float
    expires_at: int


def _lower_cpu_priority(niceness: int) -> None:
    # Linux nice values are per thread, and argon2's lane threads inherit this one's.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


@cache
def _hashing_threads(niceness: int) -> ThreadPoolExecutor:
    """Threads at a lower CPU priority, shared by every hasher of the process."""
    return ThreadPoolExecutor(
        thread_name_prefix=f"argon2-nice{niceness}",
        initializer=partial(_lower_cpu_priority, niceness),
    )


class PasswordHashing:
    """argon2id with configurable RFC 9106 parameters, run off the event loop.

    Hashes run in threads at a lower CPU priority (`PASSWORD_HASH_NICENESS`), so a storm
    of logins takes little of the CPU other requests need (docs/benchmarks.md, change 11);
    a semaphore bounds concurrent hashes per process, so the storm queues up instead of
    holding 64 MiB per hash.
    """

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._limit = asyncio.Semaphore(settings.password_hash_concurrency)
        self._niceness = settings.password_hash_niceness

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; never raises for a wrong or malformed hash."""
        return await self._run(self._verify, password_hash, password)

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        async with self._limit:
            return await asyncio.get_running_loop().run_in_executor(
                _hashing_threads(self._niceness), work, *args
            )

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    @cached_property
    def dummy_hash(self) -> str:
        """A hash to verify against for unknown emails, so they cost the same time."""
        return self._hasher.hash(secrets.token_urlsafe(16))


class TokenCodec:
    """Issue and check access tokens with an explicit algorithm, issuer, audience and type."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.lifetime = settings.access_token_minutes * 60
        if self.algorithm.startswith("HS"):
            self._signing_key: Any = settings.secret_key.get_secret_value()
            self._verifying_key: Any = self._signing_key
        else:
            assert settings.jwt_private_key_file is not None
            assert settings.jwt_public_key_file is not None
            self._signing_key = Path(settings.jwt_private_key_file).read_text()
            self._verifying_key = Path(settings.jwt_public_key_file).read_text()
        # Only successes are cached: a forged or malformed token raises every time.
        self._verified = lru_cache(maxsize=VERIFIED_TOKENS_CACHED)(self._verify)

    def issue(self, user_id: int, session_id: str) -> tuple[str, AccessClaims]:
        now = time.time()
        claims = AccessClaims(
            user_id=user_id,
            session_id=session_id,
            jti=uuid.uuid4().hex,
            # Milliseconds: a "not before" mark set in the same second must still separate
            # the tokens issued before it from those issued after.
            issued_at=math.floor(now * 1000) / 1000,
            expires_at=int(now) + self.lifetime,
        )
        payload = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": claims.jti,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "iss": self.issuer,
            "aud": self.audience,
            "typ": ACCESS_TOKEN_TYPE,
        }
        return jwt.encode(payload, self._signing_key, algorithm=self.algorithm), claims

    def decode(self, token: str) -> AccessClaims:
        """The claims of a valid access token; InvalidToken for anything else."""
        claims = self._verified(token)
        if claims.expires_at + CLOCK_LEEWAY_SECONDS <= time.time():
            raise InvalidToken("Signature has expired")
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "sid", "jti", "iat", "exp", "iss", "aud", "typ"]},
                leeway=CLOCK_LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
        if payload.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        try:
            return AccessClaims(
                user_id=int(payload["sub"]),
                session_id=str(payload["sid"]),
                jti=str(payload["jti"]),
                issued_at=float(payload["iat"]),
                expires_at=int(payload["exp"]),
            )
        except (TypeError, ValueError) as error:
            raise InvalidToken("malformed claims") from error


def new_refresh_token() -> str:
    """An opaque, unguessable refresh token (only its hash is stored)."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
