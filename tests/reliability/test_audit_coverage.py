"""Every write route leaves its audit event: the routes are read from the app, not listed.

A write route added without a scenario here fails the first test, so the trail cannot
silently miss a new way of changing data. The auth routes change sessions, not entities,
and are left out; `/users/me` and `/users/me/password` are audited as updates of the user.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient, Response

from app.domains.user.models import User
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import PASSWORD, Factory

API = "/api/v1"
WRITES = {"POST", "PATCH", "DELETE"}

APP = create_app(make_settings(database_url="postgresql://x@y/z", redis_url="redis://"))
WRITE_ROUTES = sorted(
    (method, context.path_format)
    for context in iter_route_contexts(APP.routes)
    if context.path_format.startswith(API) and not context.path_format.startswith(f"{API}/auth/")
    for method in (context.methods or set()) & WRITES
)


@dataclass(frozen=True)
class Expected:
    entity_type: str
    action: str
    entity_id: int
    response: Response


Scenario = Callable[[AsyncClient, dict[str, str], Factory, User], Awaitable[Expected]]

CREATE_BODIES: dict[str, dict[str, Any]] = {
    "users": {"email": "audited@example.com", "full_name": "Audited", "password": "x" * 16},
    "roles": {"name": "Audited"},
    "departments": {"name": "Audited"},
    "locations": {"name": "Audited", "kind": "site"},
    "resources": {"name": "Audited", "kind": "system"},
    "processes": {"title": "Audited"},
}
PATCH_BODIES: dict[str, dict[str, Any]] = {
    "users": {"job_title": "Changed"},
    "roles": {"description": "Changed"},
    "departments": {"description": "Changed"},
    "locations": {"name": "Changed"},
    "resources": {"description": "Changed"},
    "processes": {"description": "Changed"},
}
ENTITY_TYPES = {
    "users": "user",
    "roles": "role",
    "departments": "department",
    "locations": "location",
    "resources": "resource",
    "processes": "process",
}


async def _create(client: AsyncClient, headers: dict[str, str], collection: str) -> Response:
    response = await client.post(
        f"{API}/{collection}", headers=headers, json=CREATE_BODIES[collection]
    )
    assert response.status_code == 201, response.text
    return response


def _create_scenario(collection: str) -> Scenario:
    async def run(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
        response = await _create(client, headers, collection)
        return Expected(ENTITY_TYPES[collection], "create", response.json()["id"], response)

    return run


def _update_scenario(collection: str) -> Scenario:
    async def run(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
        created = await _create(client, headers, collection)
        response = await client.patch(
            created.headers["location"], headers=headers, json=PATCH_BODIES[collection]
        )
        return Expected(ENTITY_TYPES[collection], "update", created.json()["id"], response)

    return run


def _delete_scenario(collection: str) -> Scenario:
    async def run(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
        created = await _create(client, headers, collection)
        response = await client.delete(created.headers["location"], headers=headers)
        return Expected(ENTITY_TYPES[collection], "delete", created.json()["id"], response)

    return run


def _import_scenario(collection: str) -> Scenario:
    async def run(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
        row = {"id": 900001, **CREATE_BODIES[collection]}
        response = await client.post(
            f"{API}/{collection}/import",
            headers={**headers, "Content-Type": "application/x-ndjson"},
            content=json.dumps(row),
        )
        return Expected(ENTITY_TYPES[collection], "create", 900001, response)

    return run


async def _update_me(
    client: AsyncClient, _: dict[str, str], factory: Factory, user: User
) -> Expected:
    response = await client.patch(
        f"{API}/users/me", headers=factory.headers(user), json={"job_title": "Renamed"}
    )
    return Expected("user", "update", user.id, response)


async def _change_my_password(
    client: AsyncClient, _: dict[str, str], factory: Factory, user: User
) -> Expected:
    response = await client.post(
        f"{API}/users/me/password",
        headers=factory.headers(user),
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    return Expected("user", "update", user.id, response)


async def _review_process(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
    created = await _create(client, headers, "processes")
    response = await client.post(f"{created.headers['location']}/review", headers=headers)
    return Expected("process", "update", created.json()["id"], response)


async def _create_api_token(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
    response = await client.post(
        f"{API}/api-tokens", headers=headers, json={"name": "Audited", "permissions": []}
    )
    return Expected("api_token", "create", response.json()["id"], response)


async def _revoke_api_token(client: AsyncClient, headers: dict[str, str], *_: Any) -> Expected:
    created = await _create_api_token(client, headers)
    response = await client.delete(f"{API}/api-tokens/{created.entity_id}", headers=headers)
    return Expected("api_token", "update", created.entity_id, response)


SCENARIOS: dict[tuple[str, str], Scenario] = {
    ("POST", f"{API}/api-tokens"): _create_api_token,
    ("DELETE", f"{API}/api-tokens/{{api_token_id}}"): _revoke_api_token,
    ("PATCH", f"{API}/users/me"): _update_me,
    ("POST", f"{API}/users/me/password"): _change_my_password,
    ("POST", f"{API}/processes/{{process_id}}/review"): _review_process,
}
for _collection in CREATE_BODIES:
    SCENARIOS["POST", f"{API}/{_collection}"] = _create_scenario(_collection)
    _item = f"{API}/{_collection}/{{{ENTITY_TYPES[_collection]}_id}}"
    SCENARIOS["PATCH", _item] = _update_scenario(_collection)
    SCENARIOS["DELETE", _item] = _delete_scenario(_collection)
    if _collection != "users":  # users are exported, not imported
        SCENARIOS["POST", f"{API}/{_collection}/import"] = _import_scenario(_collection)


def test_every_write_route_has_an_audit_scenario() -> None:
    assert sorted(SCENARIOS) == WRITE_ROUTES


@pytest.mark.parametrize(("method", "path"), sorted(SCENARIOS))
async def test_a_write_records_one_audit_event_naming_actor_entity_and_request(
    client: AsyncClient,
    factory: Factory,
    admin: User,
    admin_headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    self_service = await factory.user(full_name="Sam Self")
    expected = await SCENARIOS[method, path](client, admin_headers, factory, self_service)
    assert expected.response.status_code in {200, 201, 204}, expected.response.text

    trail = await client.get(
        f"{API}/audit-events",
        headers=admin_headers,
        params={
            "entity_type": expected.entity_type,
            "entity_id": expected.entity_id,
            "action": expected.action,
        },
    )
    events = trail.json()["items"]
    assert len(events) == 1, events
    actor = self_service.id if path.startswith(f"{API}/users/me") else admin.id
    assert events[0]["actor_id"] == actor
    assert events[0]["request_id"] == expected.response.headers["x-request-id"]
    assert events[0]["changes"]
    assert "password" not in str(events[0]["changes"]).replace("password_changed", "")
