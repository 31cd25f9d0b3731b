"""Many writers at once: unique values, refresh tokens and If-Match versions have one winner.

The domain suites hold the smaller races (8 to 10 writers) and the 50 concurrent link
replacements of one process (tests/process/test_api.py); these push the count up and add
the collections those suites leave out. Apps here wait up to 30 s for a pooled connection,
so a slow machine shows queueing, never a 503 the race did not cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.auth.models import RefreshToken
from tests.auth.helpers import tokens
from tests.factories import Factory
from tests.reliability.conftest import SettingsFactory, assert_problem, serve

WRITERS = 100


@pytest.fixture
async def patient(settings_with: SettingsFactory) -> AsyncIterator[AsyncClient]:
    """A client of an app whose requests queue for a connection instead of giving up."""
    async with serve(settings_with(db_pool_timeout=30)) as client:
        yield client


def _same_unique_value(collection: str, n: int) -> dict[str, Any]:
    if collection == "departments":
        return {"name": f"Racer {n}", "code": "RACE"}
    if collection == "roles":  # names are unique ignoring case
        return {"name": "Racer" if n % 2 else "RACER"}
    return {  # emails are stored lower-cased
        "email": "Race@Example.com" if n % 2 else "race@example.com",
        "full_name": f"Racer {n}",
        "password": "a long enough password",
    }


@pytest.mark.parametrize("collection", ["departments", "roles", "users"])
async def test_100_concurrent_creates_of_one_unique_value_give_one_201_and_409s(
    patient: AsyncClient, admin_headers: dict[str, str], collection: str
) -> None:
    responses = await asyncio.gather(
        *(
            patient.post(
                f"/api/v1/{collection}",
                headers=admin_headers,
                json=_same_unique_value(collection, n),
            )
            for n in range(WRITERS)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (WRITERS - 1)
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409)
    listing = await patient.get(f"/api/v1/{collection}?limit=200", headers=admin_headers)
    created = [item for item in listing.json()["items"] if "racer" in str(item).lower()]
    assert len(created) == 1


async def test_50_concurrent_refreshes_of_one_token_let_at_most_one_through(
    patient: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    user = await factory.user()
    pair = await tokens(patient, user.email)
    responses = await asyncio.gather(
        *(
            patient.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
            for _ in range(50)
        )
    )
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) <= 1
    assert set(statuses) <= {200, 401}
    live = await session.scalar(
        select(func.count())
        .select_from(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
    )
    assert live is not None
    assert live <= 1, "two refresh tokens of one family are alive"


async def _created(client: AsyncClient, headers: dict[str, str], collection: str) -> str:
    bodies = {
        "users": {"email": "etag@example.com", "full_name": "E Tag", "password": "x" * 16},
        "roles": {"name": "Versioned"},
        "departments": {"name": "Versioned"},
        "locations": {"name": "Versioned", "kind": "site"},
    }
    response = await client.post(f"/api/v1/{collection}", headers=headers, json=bodies[collection])
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == 'W/"1"'
    return str(response.headers["location"])


@pytest.mark.parametrize(
    ("collection", "field"),
    [("users", "full_name"), ("roles", "name"), ("departments", "name"), ("locations", "name")],
)
async def test_concurrent_if_match_updates_at_one_version_let_exactly_one_through(
    patient: AsyncClient, admin_headers: dict[str, str], collection: str, field: str
) -> None:
    path = await _created(patient, admin_headers, collection)
    stale = {**admin_headers, "If-Match": 'W/"1"'}
    responses = await asyncio.gather(
        *(patient.patch(path, headers=stale, json={field: f"Writer {n}"}) for n in range(20))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * 19
    winner = next(r for r in responses if r.status_code == 200).json()[field]
    current = await patient.get(path, headers=admin_headers)
    assert current.json()[field] == winner
    assert current.headers["etag"] == 'W/"2"'
    for response in responses:
        if response.status_code == 412:
            assert response.headers["etag"] == 'W/"2"'
