"""Benchmark-only variants of the application, to measure a change before making it.

`locust/compare.py` and `locust/bench.py --experiments` serve `variants:create_app` with
`EXPERIMENTS` naming the changes to apply on top of the real application
(comma-separated); none of this is used in production. Each experiment is a proposal for
a file this benchmark does not own, and docs/benchmarks.md records what it measured:

- `async-get-auth`: `get_auth` as `async def` (FastAPI runs a plain `def` dependency in a
  worker thread: a thread hop on every authenticated request).
- `nice-argon2`: password hashing in threads at the lowest CPU priority (nice 19), so that
  a storm of logins only takes the CPU the other requests leave.
- `release-before-hash`: a login ends its read transaction before verifying the password,
  so queued logins do not each hold a pooled PostgreSQL connection.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request

EXPERIMENTS = set(filter(None, os.environ.get("EXPERIMENTS", "").split(",")))


async def _get_auth(request: Request) -> Any:
    return request.state.auth


def _lowest_priority() -> None:
    # Linux nice values are per thread; argon2's own lane threads inherit this one's.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _nice_argon2() -> None:
    from app.core import security

    executor = ThreadPoolExecutor(thread_name_prefix="argon2", initializer=_lowest_priority)

    async def hash_password(self: Any, password: str) -> str:
        async with self._limit:
            loop = asyncio.get_running_loop()
            result: str = await loop.run_in_executor(executor, self._hasher.hash, password)
            return result

    async def verify(self: Any, password_hash: str, password: str) -> bool:
        async with self._limit:
            loop = asyncio.get_running_loop()
            result: bool = await loop.run_in_executor(
                executor, self._verify, password_hash, password
            )
            return result

    security.PasswordHashing.hash = hash_password  # type: ignore[method-assign]
    security.PasswordHashing.verify = verify  # type: ignore[method-assign]


def _release_before_hash() -> None:
    import uuid

    from sqlalchemy import select

    from app.core.metrics import AUTH_EVENTS
    from app.domains.auth import service
    from app.domains.auth.exceptions import InvalidCredentials
    from app.domains.auth.throttle import LoginThrottle
    from app.domains.user.models import User

    async def login(session: Any, auth: Any, *, email: str, password: str, client_ip: str) -> Any:
        # app/domains/auth/service.py's login, plus the one marked line.
        email = email.strip().lower()
        throttle = LoginThrottle(auth.token_state.redis, auth.settings)
        await throttle.check(email, client_ip)
        user = (await session.scalars(select(User).where(User.email == email))).one_or_none()
        await session.commit()  # the experiment: no connection held while argon2 runs
        password_hash = user.password_hash if user is not None else auth.passwords.dummy_hash
        valid = await auth.passwords.verify(password_hash, password)
        if user is None or not valid or not user.is_active:
            await throttle.failed(email, client_ip)
            AUTH_EVENTS.labels(event="login_failure").inc()
            raise InvalidCredentials()
        await throttle.succeeded(email)
        if auth.passwords.needs_rehash(user.password_hash):
            user.password_hash = await auth.passwords.hash(password)
        AUTH_EVENTS.labels(event="login_success").inc()
        return await service._issue_pair(session, auth, user_id=user.id, family_id=uuid.uuid4())

    service.login = login


def create_app() -> FastAPI:
    """The configured application with the experiments in `EXPERIMENTS` applied."""
    if "async-get-auth" in EXPERIMENTS:
        from app.domains.auth import context

        # Routes are built from the Annotated dependency when the app is created.
        dependency = context.AuthDep.__metadata__[0]
        object.__setattr__(dependency, "dependency", _get_auth)
    if "nice-argon2" in EXPERIMENTS:
        _nice_argon2()
    if "release-before-hash" in EXPERIMENTS:
        _release_before_hash()
    from app.main import create_configured_app

    return create_configured_app()
