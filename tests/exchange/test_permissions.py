"""Who may export and import: each collection's read permission, and its write permission."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from app.domains.auth.permissions import PERMISSIONS
from tests.exchange.helpers import API, CSV, send_import
from tests.factories import Factory

EXPORTED = ("departments", "locations", "resources", "processes", "roles", "users")
IMPORTED = ("departments", "locations", "resources", "processes", "roles")


@pytest.mark.parametrize("collection", EXPORTED)
async def test_an_export_needs_the_collections_read_permission(
    client: AsyncClient, factory: Factory, collection: str
) -> None:
    url = f"{API}/{collection}/export"
    everything_else = await factory.user(permissions=PERMISSIONS - {f"{collection}:read"})
    reader = await factory.user(permissions=[f"{collection}:read"])

    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=factory.headers(everything_else))).status_code == 403
    response = await client.get(url, headers=factory.headers(reader))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(CSV)


@pytest.mark.parametrize("collection", IMPORTED)
async def test_an_import_needs_the_collections_write_permission(
    client: AsyncClient, factory: Factory, collection: str
) -> None:
    body = "id\n"
    everything_else = await factory.user(permissions=PERMISSIONS - {f"{collection}:write"})
    reader = await factory.user(permissions=[f"{collection}:read"])
    writer = await factory.user(permissions=[f"{collection}:write"])

    assert (await send_import(client, {}, collection, body)).status_code == 401
    for refused in (everything_else, reader):
        response = await send_import(client, factory.headers(refused), collection, body)
        assert response.status_code == 403
    response = await send_import(client, factory.headers(writer), collection, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": 0,
        "created": 0,
        "updated": 0,
        "unchanged": 0,
        "errors": [],
        "dry_run": False,
    }


async def test_users_cannot_be_imported(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    response = await send_import(client, factory.headers(admin), "users", "email\n")
    assert response.status_code == 404


async def test_a_refused_caller_sends_no_body_to_the_parser(
    client: AsyncClient, factory: Factory
) -> None:
    reader = await factory.user(permissions=["processes:read"])
    headers = factory.headers(reader)
    response = await send_import(client, headers, "processes", b"\xff not even text")
    assert response.status_code == 403
