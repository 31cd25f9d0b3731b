"""What Redis knows about tokens and users, read in one round trip per request.

- `deny-session:<sid>`: sessions (refresh families) ended by logout or by a reused refresh
  token; every access token of the session is refused until the last would have expired.
- `nbf:<user>`: tokens issued before this instant are refused (logout-all, password
  change, deactivation).
- `authz:<user>`: a cached copy of the user's active flag, superuser flag and permissions,
  tagged with the epochs it was read at; `epoch:<user>` and `roles-epoch` move on every
  change to the user or to any role, so a stale copy is never used.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from app.core.security import AccessClaims

AUTHZ_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Authorization:
    is_active: bool
    is_superuser: bool
    permissions: frozenset[str]


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


class TokenStateStore:
    """Redis keys of the deny list, not-before marks and cached authorizations."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

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
        epoch = f"{_text(user_epoch) or 0}.{_text(roles_epoch) or 0}"
        authorization = None
        if cached:
            data = json.loads(cached)
            if data.get("epoch") == epoch:
                authorization = Authorization(
                    is_active=data["active"],
                    is_superuser=data["su"],
                    permissions=frozenset(data["perms"]),
                )
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

    async def deny_session(self, session_id: str, token_lifetime: int) -> None:
        """Refuse every access token of this session, until the last one issued has expired."""
        await self.redis.set(self._key("deny-session", session_id), "1", ex=token_lifetime + 60)

    async def end_sessions(
        self, user_id: int, token_lifetime: int, *, keep_session: str | None = None
    ) -> None:
        """Refuse every access token of this user issued until now (but `keep_session`'s)."""
        mark = f"{math.ceil(time.time() * 1000) / 1000:.3f}|{keep_session or ''}"
        await self.redis.set(self._key("nbf", user_id), mark, ex=token_lifetime + 60)
        await self.user_changed(user_id)

    async def user_changed(self, user_id: int) -> None:
        """Invalidate the cached authorization of one user."""
        await self.redis.incr(self._key("epoch", user_id))

    async def roles_changed(self) -> None:
        """Invalidate every cached authorization (a role's permissions changed)."""
        await self.redis.incr(self._key("roles-epoch"))
