"""Rate limits shared by every worker and replica: a token bucket per caller in Redis.

Who the caller is, the edge asks through an interface that auth implements (`Callers`):
`identify(scope)` answers a signed-in `Caller` (bucketed by their user id), or None for
the client address (which the proxy headers middleware has already taken from
`X-Forwarded-For` when the peer is a trusted proxy). The sign-in routes count per address
whatever token comes along: a token must not buy a fresh bucket of password guesses. Each
route group has its own rate; probes and metrics are exempt.

A `Caller` also names the Redis keys its token check will read (`reads`): the bucket's
script reads them in the same round trip and hands their values back (`keep`), so an
authenticated request costs one Redis round trip, not two. This module knows nothing of
tokens.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.metrics import RATE_LIMITED, RATE_LIMITER_ERRORS
from app.core.problems import problem_response, redis_problem
from app.core.redis import REDIS_UNREACHABLE, RedisPoolExhausted

logger = logging.getLogger("app.ratelimit")

# Refill, then take one token if there is one. Redis's clock, so replicas agree; the key
# expires once a full refill would have happened anyway.
BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local period_ms = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * capacity / period_ms)
local allowed = 0
local retry_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry_ms = math.ceil((1 - tokens) * period_ms / capacity)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], period_ms)
local reads = {}
if #KEYS > 1 then
  reads = redis.call('MGET', unpack(KEYS, 2))
end
return {allowed, math.floor(tokens), retry_ms, reads}
"""

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# After a Redis failure, requests pass unchecked for this long before Redis is tried again,
# so an outage costs one slow attempt per pause instead of one per request.
OUTAGE_PAUSE_SECONDS = 1.0
OUTAGE_WARNING_INTERVAL_SECONDS = 60.0


class Caller(Protocol):
    """A signed-in caller: their user id, and the keys their token check will read."""

    @property
    def user_id(self) -> int: ...

    @property
    def reads(self) -> Sequence[str]: ...

    def keep(self, scope: Scope, values: list[Any]) -> None:
        """Receive the values of `reads`, read in the bucket's round trip."""


class Callers(Protocol):
    """Who is calling, as far as the rate limiter needs to know (implemented by auth)."""

    def identify(self, scope: Scope) -> Caller | None:
        """The signed-in caller (no Redis), or None: then the client address is the caller."""


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period_seconds: int

    @classmethod
    def parse(cls, spec: str) -> Rate:
        """`"300/minute"` -> Rate(300, 60)."""
        count, unit = spec.split("/")
        return cls(int(count), _PERIODS[unit])


@dataclass(frozen=True, slots=True)
class RouteGroup:
    name: str
    rate: Rate
    limit_header: tuple[bytes, bytes]
    per_user: bool


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int


class RateLimiter:
    """Token buckets in Redis, each refilled and taken from atomically by one Lua script."""

    def __init__(self, redis: Redis, *, callers: Callers, key_prefix: str) -> None:
        self._take = redis.register_script(BUCKET_SCRIPT)
        self._callers = callers
        self._prefix = f"{key_prefix}ratelimit:"

    async def take(self, group: RouteGroup, scope: Scope) -> Decision:
        """Take one token from the caller's bucket of `group`; hand the caller their reads."""
        caller = self._callers.identify(scope)
        if caller is not None and group.per_user:
            bucket = f"user:{caller.user_id}"
        else:
            client = scope.get("client")
            bucket = f"ip:{client[0] if client else 'unknown'}"
        reads = caller.reads if caller is not None else ()
        allowed, remaining, retry_ms, values = await self._take(
            keys=[f"{self._prefix}{group.name}:{bucket}", *reads],
            args=[group.rate.limit, group.rate.period_seconds * 1000],
        )
        if caller is not None and reads:
            caller.keep(scope, values)
        return Decision(
            allowed=bool(allowed),
            remaining=int(remaining),
            retry_after=max(1, math.ceil(int(retry_ms) / 1000)),
        )


class RateLimitMiddleware:
    """Refuse callers over their route group's rate with a 429 problem; fail open without Redis.

    Only a Redis that cannot be reached lets requests through unchecked. A pool that stays
    full answers 503 (saturation), an error Redis answers is a logged 500 (a bug).
    Needs a `RateLimiter` in the lifespan state (`rate_limiter`); without one it passes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        auth_prefix: str,
        exempt_paths: Iterable[str],
    ) -> None:
        self.app = app
        self.auth_prefix = auth_prefix
        self.exempt_paths = frozenset(exempt_paths)
        self.default = _group("default", settings.rate_limit_default, per_user=True)
        self.auth = _group("auth", settings.rate_limit_auth, per_user=False)
        for group in (self.default, self.auth):
            RATE_LIMITED.labels(group.name)
        self._paused_until = 0.0
        self._next_warning = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        limiter: RateLimiter | None = scope.get("state", {}).get("rate_limiter")
        if limiter is None:
            await self.app(scope, receive, send)
            return
        group = self.auth if scope["path"].startswith(self.auth_prefix) else self.default
        try:
            decision = await self._decide(limiter, group, scope)
        except RedisError as error:
            await redis_problem(scope, error)(scope, receive, send)
            return
        if decision is None:
            await self.app(scope, receive, send)
            return
        headers = [group.limit_header, (b"x-ratelimit-remaining", b"%d" % decision.remaining)]
        if not decision.allowed:
            RATE_LIMITED.labels(group.name).inc()
            response = problem_response(
                scope,
                status=429,
                slug="too-many-requests",
                detail=f"Too many requests; retry in {decision.retry_after} s.",
                headers={
                    "Retry-After": str(decision.retry_after),
                    "X-RateLimit-Limit": str(group.rate.limit),
                    "X-RateLimit-Remaining": "0",
                },
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _decide(
        self, limiter: RateLimiter, group: RouteGroup, scope: Scope
    ) -> Decision | None:
        if time.monotonic() < self._paused_until:
            RATE_LIMITER_ERRORS.inc()
            return None
        try:
            return await limiter.take(group, scope)
        except RedisPoolExhausted:
            # The wait began before the outage that filled the pool was noticed.
            if time.monotonic() < self._paused_until:
                RATE_LIMITER_ERRORS.inc()
                return None
            raise
        except REDIS_UNREACHABLE as error:
            self._report_outage(error)
            return None

    def _report_outage(self, error: Exception) -> None:
        RATE_LIMITER_ERRORS.inc()
        now = time.monotonic()
        self._paused_until = now + OUTAGE_PAUSE_SECONDS
        if now >= self._next_warning:
            self._next_warning = now + OUTAGE_WARNING_INTERVAL_SECONDS
            logger.warning(
                "rate limiter: Redis unreachable (%s); letting requests through unchecked",
                type(error).__name__,
            )


def _group(name: str, spec: str, *, per_user: bool) -> RouteGroup:
    rate = Rate.parse(spec)
    return RouteGroup(name, rate, (b"x-ratelimit-limit", str(rate.limit).encode()), per_user)
