"""Password hashing (argon2id) and access tokens (JWT): primitives with no HTTP or database."""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.core.config import Settings

ACCESS_TOKEN_TYPE = "access"  # noqa: S105 (a claim value, not a secret)


class InvalidToken(Exception):
    """The token is malformed, forged, expired or meant for something else."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str  # the refresh-token family this access token was issued in
    jti: str
    issued_at: float
    expires_at: int


class PasswordHashing:
    """argon2id with configurable RFC 9106 parameters, run off the event loop.

    A semaphore bounds concurrent hashes per process, so a storm of logins queues up
    instead of taking every core from the requests that are not logging in.
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

    async def hash(self, password: str) -> str:
        async with self._limit:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; never raises for a wrong or malformed hash."""
        async with self._limit:
            return await asyncio.to_thread(self._verify, password_hash, password)

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
        try:
            payload = jwt.decode(
                token,
                self._verifying_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["sub", "sid", "jti", "iat", "exp", "iss", "aud", "typ"]},
                leeway=5,
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
