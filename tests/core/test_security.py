"""Unit tests of the security primitives: hashing priority and the verified-token cache."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from app.core import security
from app.core.config import Settings
from app.core.security import InvalidToken, PasswordHashing, TokenCodec


@pytest.mark.parametrize("niceness", [10, 19])
async def test_hashes_run_in_threads_at_a_lower_cpu_priority(
    settings: Settings, niceness: int
) -> None:
    hashing = PasswordHashing(settings.model_copy(update={"password_hash_niceness": niceness}))

    def priority(_: str) -> str:
        return str(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    assert await hashing._run(priority, "") == str(niceness)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0
    assert await hashing.verify(await hashing.hash("a password"), "a password")


async def test_the_semaphore_bounds_concurrent_hashes(settings: Settings) -> None:
    hashing = PasswordHashing(settings.model_copy(update={"password_hash_concurrency": 2}))
    running = 0
    peak = 0
    lock = threading.Lock()

    def work(_: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return ""

    await asyncio.gather(*(hashing._run(work, "") for _ in range(6)))
    assert peak == 2


def test_a_cached_token_still_expires(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    codec = TokenCodec(settings)
    token, claims = codec.issue(7, "session")
    assert codec.decode(token) == claims
    assert codec.decode(token) == claims  # from the cache
    later = claims.expires_at + security.CLOCK_LEEWAY_SECONDS + 1
    monkeypatch.setattr(security.time, "time", lambda: later)
    with pytest.raises(InvalidToken):
        codec.decode(token)


def test_a_forged_token_is_refused_every_time(settings: Settings) -> None:
    codec = TokenCodec(settings)
    token, _ = codec.issue(7, "session")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        with pytest.raises(InvalidToken):
            codec.decode(forged)
