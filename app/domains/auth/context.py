"""The per-process authentication toolkit, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from app.core.config import Settings
from app.core.security import PasswordHashing, TokenCodec
from app.domains.auth.callers import TokenCallers
from app.domains.auth.throttle import LoginThrottle
from app.domains.auth.token_state import TokenStateStore


@dataclass(frozen=True, slots=True)
class AuthContext:
    settings: Settings
    passwords: PasswordHashing
    tokens: TokenCodec
    token_state: TokenStateStore
    login_throttle: LoginThrottle
    callers: TokenCallers  # the rate limiter's view of who is calling

    @classmethod
    def build(cls, settings: Settings, redis: Redis) -> AuthContext:
        tokens = TokenCodec(settings)
        token_state = TokenStateStore(
            redis,
            settings.redis_key_prefix,
            replicas=settings.revocation_replicas,
            wait_ms=settings.redis_revocation_wait_ms,
        )
        return cls(
            settings=settings,
            passwords=PasswordHashing(settings),
            tokens=tokens,
            token_state=token_state,
            login_throttle=LoginThrottle(redis, settings),
            callers=TokenCallers(tokens, token_state),
        )


async def get_auth(request: Request) -> AuthContext:
    # async: FastAPI runs sync dependencies in a thread, a hop that costs more than this.
    auth: AuthContext = request.state.auth
    return auth


AuthDep = Annotated[AuthContext, Depends(get_auth)]
