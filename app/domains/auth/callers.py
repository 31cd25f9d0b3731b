"""Who is calling, for the rate limiter: the user of a valid bearer token.

Auth's side of `app.core.ratelimit.Callers`. The token's state (`TokenStateStore.keys`) is
read in the rate limiter's round trip and left in the request's scope, where the token
check (`current_principal`) picks it up with `prefetched_values`.

An API token (`pat_...`) names no user: its owner is known once this process has checked
it (`ApiTokenOwners`). From then on it is bucketed with its owner's other requests, and
its cached row and its owner's state are read in the same round trip; until then (its
first request in the process) it counts against the client address, like an invalid token.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from app.core.security import InvalidToken, TokenCodec
from app.domains.auth.token_state import TokenStateStore, hash_api_token, is_api_token

# Not in scope["state"]: servers need not copy that dict per request, so it may be shared
# by every request of the process.
PREFETCHED = "process_atlas.prefetched_token_state"
API_TOKEN_OWNERS_KEPT = 4096


class ApiTokenOwners:
    """Whose API tokens this process has checked: token hash -> owner, the latest kept.

    Safe to keep: a token never changes hands. Only the token check adds an entry, after
    the token passed, so a made-up token never reaches its supposed owner's bucket.
    """

    def __init__(self, size: int = API_TOKEN_OWNERS_KEPT) -> None:
        self._owners: OrderedDict[str, int] = OrderedDict()
        self._size = size

    def get(self, token_hash: str) -> int | None:
        owner = self._owners.get(token_hash)
        if owner is not None:
            self._owners.move_to_end(token_hash)
        return owner

    def remember(self, token_hash: str, user_id: int) -> None:
        self._owners[token_hash] = user_id
        self._owners.move_to_end(token_hash)
        if len(self._owners) > self._size:
            self._owners.popitem(last=False)

    def forget(self, token_hash: str) -> None:
        self._owners.pop(token_hash, None)


@dataclass(frozen=True, slots=True)
class Prefetched:
    """The values of `TokenStateStore.keys` for the token `jti`, read with the bucket.

    For an API token, `jti` is the token's hash and the keys are `api_token_keys`.
    """

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
        self.api_token_owners = ApiTokenOwners()

    def identify(self, scope: Scope) -> TokenCaller | None:
        token = _bearer_token(scope)
        if token is None:
            return None
        if is_api_token(token):
            return self._api_token_caller(token)
        try:
            claims = self._tokens.decode(token)
        except InvalidToken:
            return None
        reads = self._token_state.keys(claims.user_id, claims.session_id) if self._prefetch else ()
        return TokenCaller(claims.user_id, claims.jti, reads)

    def _api_token_caller(self, token: str) -> TokenCaller | None:
        token_hash = hash_api_token(token)
        owner = self.api_token_owners.get(token_hash)
        if owner is None:
            return None
        reads = self._token_state.api_token_keys(token_hash, owner) if self._prefetch else ()
        return TokenCaller(owner, token_hash, reads)


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
