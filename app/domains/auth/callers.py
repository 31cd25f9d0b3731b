"""Who is calling, for the rate limiter: the user of a valid bearer token.

Auth's side of `app.core.ratelimit.Callers`. The token's state (`TokenStateStore.keys`) is
read in the rate limiter's round trip and left in the request's scope, where the token
check (`current_principal`) picks it up with `prefetched_values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from app.core.security import InvalidToken, TokenCodec
from app.domains.auth.token_state import TokenStateStore

# Not in scope["state"]: servers need not copy that dict per request, so it may be shared
# by every request of the process.
PREFETCHED = "process_atlas.prefetched_token_state"


@dataclass(frozen=True, slots=True)
class Prefetched:
    """The values of `TokenStateStore.keys` for the token `jti`, read with the bucket."""

    jti: str
    values: list[Any]


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """The user of a valid bearer token, and the token state keys to read along."""

    user_id: int
    jti: str
    reads: Sequence[str]

    def keep(self, scope: Scope, values: list[Any]) -> None:
        scope[PREFETCHED] = Prefetched(self.jti, values)


class TokenCallers:
    """Identify callers by their bearer token: signature and expiry only, no Redis.

    With `prefetch=False` nothing is read along with the bucket: the token check then
    makes its own round trip (the benchmark variant `two-redis-round-trips`).
    """

    def __init__(
        self, tokens: TokenCodec, token_state: TokenStateStore, *, prefetch: bool = True
    ) -> None:
        self._tokens = tokens
        self._token_state = token_state
        self._prefetch = prefetch

    def identify(self, scope: Scope) -> TokenCaller | None:
        token = _bearer_token(scope)
        if token is None:
            return None
        try:
            claims = self._tokens.decode(token)
        except InvalidToken:
            return None
        reads = self._token_state.keys(claims.user_id, claims.session_id) if self._prefetch else ()
        return TokenCaller(claims.user_id, claims.jti, reads)


def prefetched_values(scope: Scope, jti: str) -> list[Any] | None:
    """The token state values the rate limiter read for token `jti`, if it did."""
    prefetched: Prefetched | None = scope.get(PREFETCHED)
    if prefetched is not None and prefetched.jti == jti:
        return prefetched.values
    return None


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None
