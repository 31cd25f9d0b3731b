"""What Redis knows about tokens and users, read in one round trip per request.

- `deny-session:<sid>`: sessions (refresh families) ended by logout or by a reused refresh
  token; every access token of the session is refused until the last would have expired.
- `nbf:<user>`: tokens issued before this instant are refused (logout-all, password
  change, deactivation).
- `authz:<user>`: a cached copy of the user's active flag, superuser flag and permissions,
  tagged with the epochs it was read at; `epoch:<user>` and `roles-epoch` move on every
  change to the user or to any role, so a stale copy is never used.
- `api-token:<sha256>`: a cached copy of an API token's row (id, owner, permissions,
  expiry), or `revoked` once it was revoked; `api-token-used:<sha256>` lives for a minute
  after its `last_used_at` was written, so that at most one request a minute writes it.

Revocations (deny marks, not-before marks, `revoked` copies) and the epochs that retire
cached authorizations are written with a WAIT for `replicas` replicas behind them, on the
same connection: answered, they survive a failover (docs/reliability.md, "Redis failover").
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from app.core.metrics import REDIS_UNREPLICATED_REVOCATIONS
from app.core.redis import primary_address, primary_moved
from app.core.security import AccessClaims

logger = logging.getLogger("app.auth")

AUTHZ_TTL_SECONDS = 3600
API_TOKEN_PREFIX = "pat_"  # noqa: S105 (what every API token starts with)
API_TOKEN_TTL_SECONDS = 300
# Long enough to outlive any check that read the row before the revocation committed: such
# a check caches its copy only where no value is (SET NX), and this value is there.
API_TOKEN_REVOKED_TTL_SECONDS = 86400
API_TOKEN_USE_INTERVAL_SECONDS = 60
_REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Authorization:
    is_active: bool
    is_superuser: bool
    permissions: frozenset[str]


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """What a token check needs of an API token's row; cached in Redis under its hash."""

    id: int
    user_id: int
    permissions: frozenset[str]
    expires_at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class CachedApiToken:
    record: ApiTokenRecord | None  # None: not cached (then PostgreSQL says), or revoked
    revoked: bool


@dataclass(frozen=True, slots=True)
class ApiTokenState:
    token: CachedApiToken
    used_recently: bool  # its last_used_at was written less than a minute ago
    authorization: Authorization | None  # the owner's, as for an access token
    epoch: str


def is_api_token(token: str) -> bool:
    return token.startswith(API_TOKEN_PREFIX)


def hash_api_token(token: str) -> str:
    """The SHA-256 an API token is stored and cached under (it holds 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenState:
    session_denied: bool
    not_before: float
    kept_session: str | None  # the one session a not-before mark spares (password change)
    authorization: Authorization | None
    epoch: str

    def revokes(self, *, issued_at: float, session_id: str) -> bool:
        if self.session_denied:
            return True
        return issued_at < self.not_before and session_id != self.kept_session


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _authorization(
    cached: bytes | str | None, user_epoch: bytes | str | None, roles_epoch: bytes | str | None
) -> tuple[Authorization | None, str]:
    """The cached authorization if it was read at the current epochs, and those epochs."""
    epoch = f"{_text(user_epoch) or 0}.{_text(roles_epoch) or 0}"
    if not cached:
        return None, epoch
    data = json.loads(cached)
    if data.get("epoch") != epoch:
        return None, epoch
    authorization = Authorization(
        is_active=data["active"], is_superuser=data["su"], permissions=frozenset(data["perms"])
    )
    return authorization, epoch


def _cached_api_token(value: bytes | str | None) -> CachedApiToken:
    text = _text(value)
    if text is None:
        return CachedApiToken(record=None, revoked=False)
    if text == _REVOKED:
        return CachedApiToken(record=None, revoked=True)
    data = json.loads(text)
    record = ApiTokenRecord(
        id=data["id"],
        user_id=data["user"],
        permissions=frozenset(data["perms"]),
        expires_at=data["exp"],
    )
    return CachedApiToken(record=record, revoked=False)


class TokenStateStore:
    """Redis keys of the deny list, not-before marks and cached authorizations.

    `replicas`: how many replicas must hold a revocation before it counts as done (WAIT,
    at most `wait_ms`); 0 writes it to the primary alone.
    """

    def __init__(self, redis: Redis, prefix: str, *, replicas: int = 0, wait_ms: int = 0) -> None:
        self.redis = redis
        self.prefix = prefix
        self.replicas = replicas
        self.wait_ms = wait_ms

    async def _revoke(self, what: str, queue: Callable[[Pipeline], Any]) -> None:
        """Write what `queue` queues, in one round trip, then wait for the replicas.

        WAIT covers the writes of its own connection only, so it rides in the same
        pipeline. Too few acknowledgements mean one of two things. The sentinels moved the
        primary (a switchover or a partition; pooled connections still reach the old one):
        the writes are made again on the new primary. Or a replica is down or lagging: the
        revocation holds on the primary and the request succeeds, logged and counted, since
        only a failover in that state could drop it. Refusing would not undo the write, and
        a 503 for a logout that took effect cannot be retried (its token is refused).
        """
        # Read before writing: where the primary was when the write took its connection.
        where = primary_address(self.redis)
        acknowledged = await self._write(queue)
        if acknowledged >= self.replicas:
            return
        if await primary_moved(self.redis, since=where):
            # Written to a primary the sentinels have replaced (a switchover, a partition),
            # where it would be lost: again, on the new one.
            acknowledged = await self._write(queue)
            if acknowledged >= self.replicas:
                return
        REDIS_UNREPLICATED_REVOCATIONS.inc()
        logger.warning(
            "redis: %s acknowledged by %d of %d replicas within %d ms; "
            "a failover now could drop it",
            what,
            acknowledged,
            self.replicas,
            self.wait_ms,
        )

    async def _write(self, queue: Callable[[Pipeline], Any]) -> int:
        """Run the queued writes, then WAIT; how many replicas acknowledged them."""
        async with self.redis.pipeline(transaction=False) as pipe:
            queue(pipe)
            if not self.replicas:
                await pipe.execute()
                return 0
            pipe.wait(self.replicas, self.wait_ms)
            results = await pipe.execute()
        acknowledged: int = results[-1]
        return acknowledged

    def _key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)

    def keys(self, user_id: int, session_id: str) -> list[str]:
        """The keys a token check reads (the rate limiter reads them in its own round trip)."""
        return [
            self._key("deny-session", session_id),
            self._key("nbf", user_id),
            self._key("authz", user_id),
            self._key("epoch", user_id),
            self._key("roles-epoch"),
        ]

    async def read(self, claims: AccessClaims) -> TokenState:
        """Everything a token check needs, in one MGET."""
        return self.parse(await self.redis.mget(self.keys(claims.user_id, claims.session_id)))

    @staticmethod
    def parse(values: Sequence[bytes | str | None]) -> TokenState:
        """The state from the values of `keys()`, in that order."""
        session_denied, not_before, cached, user_epoch, roles_epoch = values
        authorization, epoch = _authorization(cached, user_epoch, roles_epoch)
        mark, _, kept = (_text(not_before) or "0").partition("|")
        return TokenState(
            session_denied=session_denied is not None,
            not_before=float(mark),
            kept_session=kept or None,
            authorization=authorization,
            epoch=epoch,
        )

    async def cache(self, user_id: int, authorization: Authorization, epoch: str) -> None:
        """Remember an authorization read from PostgreSQL at `epoch`."""
        value = json.dumps(
            {
                "epoch": epoch,
                "active": authorization.is_active,
                "su": authorization.is_superuser,
                "perms": sorted(authorization.permissions),
            }
        )
        await self.redis.set(self._key("authz", user_id), value, ex=AUTHZ_TTL_SECONDS)

    def api_token_keys(self, token_hash: str, user_id: int) -> list[str]:
        """The keys an API token check reads: the token's, then its owner's authorization."""
        return [
            self._key("api-token", token_hash),
            self._key("api-token-used", token_hash),
            self._key("authz", user_id),
            self._key("epoch", user_id),
            self._key("roles-epoch"),
        ]

    async def read_api_token(self, token_hash: str, user_id: int) -> list[bytes | str | None]:
        """Everything an API token check needs, in one MGET."""
        values: list[bytes | str | None] = await self.redis.mget(
            self.api_token_keys(token_hash, user_id)
        )
        return values

    @staticmethod
    def parse_api_token(values: Sequence[bytes | str | None]) -> ApiTokenState:
        """The state from the values of `api_token_keys()`, in that order."""
        cached_token, used, cached, user_epoch, roles_epoch = values
        authorization, epoch = _authorization(cached, user_epoch, roles_epoch)
        return ApiTokenState(
            token=_cached_api_token(cached_token),
            used_recently=used is not None,
            authorization=authorization,
            epoch=epoch,
        )

    async def cached_api_token(self, token_hash: str) -> CachedApiToken:
        """The cached copy of one API token (its first request in this process reads it)."""
        return _cached_api_token(await self.redis.get(self._key("api-token", token_hash)))

    async def cache_api_token(self, token_hash: str, record: ApiTokenRecord) -> None:
        """Remember a token read from PostgreSQL, unless a value (`revoked`, say) is there."""
        ttl = min(API_TOKEN_TTL_SECONDS, math.floor(record.expires_at - time.time()))
        if ttl <= 0:
            return
        value = json.dumps(
            {
                "id": record.id,
                "user": record.user_id,
                "perms": sorted(record.permissions),
                "exp": record.expires_at,
            }
        )
        await self.redis.set(self._key("api-token", token_hash), value, ex=ttl, nx=True)

    async def revoke_api_tokens(self, token_hashes: Sequence[str]) -> None:
        """Replace the cached copies of these tokens by `revoked` (one round trip)."""
        if not token_hashes:
            return

        def queue(pipe: Pipeline) -> None:
            for token_hash in token_hashes:
                pipe.set(
                    self._key("api-token", token_hash), _REVOKED, ex=API_TOKEN_REVOKED_TTL_SECONDS
                )

        await self._revoke("API token revocation", queue)

    async def claim_api_token_use(self, token_hash: str) -> bool:
        """True for the first caller in a minute: it writes the token's `last_used_at`."""
        claimed = await self.redis.set(
            self._key("api-token-used", token_hash),
            "1",
            ex=API_TOKEN_USE_INTERVAL_SECONDS,
            nx=True,
        )
        return bool(claimed)

    async def deny_session(self, session_id: str, token_lifetime: int) -> None:
        """Refuse every access token of this session, until the last one issued has expired."""
        key = self._key("deny-session", session_id)
        await self._revoke(
            "session deny mark", lambda pipe: pipe.set(key, "1", ex=token_lifetime + 60)
        )

    async def end_sessions(
        self, user_id: int, token_lifetime: int, *, keep_session: str | None = None
    ) -> None:
        """Refuse every access token of this user issued until now (but `keep_session`'s),
        and invalidate the user's cached authorization."""
        mark = f"{math.ceil(time.time() * 1000) / 1000:.3f}|{keep_session or ''}"

        def queue(pipe: Pipeline) -> None:
            pipe.set(self._key("nbf", user_id), mark, ex=token_lifetime + 60)
            pipe.incr(self._key("epoch", user_id))

        await self._revoke("not-before mark", queue)

    async def user_changed(self, user_id: int) -> None:
        """Invalidate the cached authorization of one user."""
        key = self._key("epoch", user_id)
        await self._revoke("user epoch", lambda pipe: pipe.incr(key))

    async def roles_changed(self) -> None:
        """Invalidate every cached authorization (a role's permissions changed)."""
        key = self._key("roles-epoch")
        await self._revoke("roles epoch", lambda pipe: pipe.incr(key))
