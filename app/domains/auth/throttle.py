"""Password-guess allowances in Redis: per account (whatever the IP) and per client IP.

A guess takes its failure slot before the password is verified, in one atomic script, so
concurrent guesses verify at most the allowance; a success hands its slots back.
"""

from __future__ import annotations

from redis.asyncio import Redis

from app.core.config import Settings
from app.core.errors import TooManyRequests

# KEYS: the counters; ARGV[1]: the window in seconds; ARGV[1 + i]: the limit of KEYS[i].
# Answers {0, 0} after counting one in every key, or {i, ttl} when KEYS[i] is at its limit.
# Redis 6.2 commands only: EXPIRE NX is Redis 7, so the TTL is read instead.
_RESERVE = """
local window = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i + 1]) then
        local ttl = redis.call('TTL', key)
        if ttl < 0 then
            redis.call('EXPIRE', key, window)
            ttl = window
        end
        return {i, ttl}
    end
end
for _, key in ipairs(KEYS) do
    redis.call('INCR', key)
    if redis.call('TTL', key) < 0 then
        redis.call('EXPIRE', key, window)
    end
end
return {0, 0}
"""

# KEYS[1]: the account counter, cleared; KEYS[2] (optional): the IP counter, one slot back.
_RELEASE = """
redis.call('DEL', KEYS[1])
if KEYS[2] and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
    redis.call('DECR', KEYS[2])
end
return 0
"""

_REFUSALS = (
    "Too many failed password attempts for this account; try again later.",
    "Too many failed logins from this address; try again later.",
)


class LoginThrottle:
    """Built once per process: the scripts are registered with the client once."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.prefix = settings.redis_key_prefix
        self.window = settings.login_failure_window_seconds
        self.max_per_account = settings.login_max_failures
        self.max_per_ip = settings.login_max_failures_per_ip
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    def _keys(self, email: str, ip: str | None) -> list[str]:
        keys = [f"{self.prefix}login-fail:account:{email}"]
        if ip is not None:
            keys.append(f"{self.prefix}login-fail:ip:{ip}")
        return keys

    async def reserve(self, *, email: str, ip: str | None = None) -> None:
        """Count one failure before verifying; 429 while either allowance is used up."""
        keys = self._keys(email, ip)
        limits = [self.max_per_account, self.max_per_ip][: len(keys)]
        refused, ttl = await self._reserve(keys=keys, args=[self.window, *limits])
        if refused:
            raise TooManyRequests(_REFUSALS[int(refused) - 1], retry_after=max(int(ttl), 1))

    async def release(self, *, email: str, ip: str | None = None) -> None:
        """After a correct password: clear the account's failures, give the IP slot back."""
        await self._release(keys=self._keys(email, ip))
