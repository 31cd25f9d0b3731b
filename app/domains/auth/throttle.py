"""Failed-login counters in Redis: per account (whatever the IP) and per client IP."""

from __future__ import annotations

from redis.asyncio import Redis

from app.core.config import Settings
from app.core.errors import TooManyRequests


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.prefix = settings.redis_key_prefix
        self.window = settings.login_failure_window_seconds
        self.max_per_account = settings.login_max_failures
        self.max_per_ip = settings.login_max_failures_per_ip

    def _keys(self, email: str, ip: str) -> tuple[str, str]:
        return f"{self.prefix}login-fail:account:{email}", f"{self.prefix}login-fail:ip:{ip}"

    async def check(self, email: str, ip: str) -> None:
        """Refuse with 429 while either counter is at its limit."""
        account_key, ip_key = self._keys(email, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(account_key)
            pipe.ttl(account_key)
            pipe.get(ip_key)
            pipe.ttl(ip_key)
            account, account_ttl, per_ip, ip_ttl = await pipe.execute()
        if account is not None and int(account) >= self.max_per_account:
            raise TooManyRequests(
                "Too many failed logins for this account; try again later.",
                retry_after=max(int(account_ttl), 1),
            )
        if per_ip is not None and int(per_ip) >= self.max_per_ip:
            raise TooManyRequests(
                "Too many failed logins from this address; try again later.",
                retry_after=max(int(ip_ttl), 1),
            )

    async def failed(self, email: str, ip: str) -> None:
        account_key, ip_key = self._keys(email, ip)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(account_key)
            pipe.expire(account_key, self.window, nx=True)
            pipe.incr(ip_key)
            pipe.expire(ip_key, self.window, nx=True)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        await self.redis.delete(f"{self.prefix}login-fail:account:{email}")
