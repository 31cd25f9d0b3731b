"""Every route states what it needs, and the need is enforced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from httpx import AsyncClient

from app.domains.auth.permissions import CATALOGUE, PERMISSIONS
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import Factory

PUBLIC = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/ready"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
}


def _requirements(dependant: Dependant) -> Iterator[str]:
    for dependency in dependant.dependencies:
        permission = getattr(dependency.call, "__permission__", None)
        if permission:
            yield permission
        yield from _requirements(dependency)


def _routes(app: FastAPI) -> list[tuple[str, str, set[str]]]:
    routes = []
    for route in iter_route_contexts(app.routes):
        path, dependant = route.path_format, getattr(route, "dependant", None)
        if path and path.startswith("/api/v1") and dependant is not None:
            for method in sorted(route.methods or ()):
                routes.append((method, path, set(_requirements(dependant))))
    return routes


API_ROUTES = _routes(
    create_app(make_settings(database_url="postgresql://x@y/z", redis_url="redis://"))
)
PROTECTED = [
    (method, path, next(iter(needs)))
    for method, path, needs in API_ROUTES
    if (method, path) not in PUBLIC and needs - {"authenticated"}
]


def test_every_api_route_but_the_public_ones_declares_a_requirement() -> None:
    undeclared = [
        f"{method} {path}"
        for method, path, needs in API_ROUTES
        if (method, path) not in PUBLIC and not needs
    ]
    assert undeclared == []
    assert len(PROTECTED) >= 30  # every collection's list, read, create, update and delete


def _sample_path(path: str) -> str:
    # Ids that do not exist: a permitted caller gets 404, never a side effect.
    names = ("user_id", "role_id", "process_id", "department_id", "location_id", "resource_id")
    for name in names:
        path = path.replace(f"{{{name}}}", "999999")
    return path


async def _call(client: AsyncClient, method: str, path: str, headers: dict[str, str]) -> int:
    body: Any = {} if method in {"POST", "PATCH"} else None
    response = await client.request(method, _sample_path(path), headers=headers, json=body)
    return response.status_code


@pytest.mark.parametrize(("method", "path", "permission"), PROTECTED)
async def test_a_route_refuses_callers_without_its_permission(
    client: AsyncClient, factory: Factory, method: str, path: str, permission: str
) -> None:
    others = await factory.user(permissions=PERMISSIONS - {permission})
    holder = await factory.user(permissions=[permission])
    assert await _call(client, method, path, factory.headers(others)) == 403
    assert await _call(client, method, path, factory.headers(holder)) not in {401, 403}
    assert await _call(client, method, path, {}) == 401


async def test_a_superuser_may_do_everything(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.user(superuser=True)
    for method, path, _ in PROTECTED:
        assert await _call(client, method, path, factory.headers(admin)) not in {401, 403}


async def test_the_permission_catalogue_is_listed_with_descriptions(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user()
    response = await client.get("/api/v1/permissions", headers=factory.headers(user))
    assert response.status_code == 200
    listed = {item["code"]: item["description"] for item in response.json()}
    assert listed == CATALOGUE
    for collection in ("users", "roles", "departments", "locations", "resources", "processes"):
        assert f"{collection}:read" in listed
        assert f"{collection}:write" in listed
    assert "audit:read" in listed
