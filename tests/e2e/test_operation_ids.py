"""Every operation has a readable, unique operationId that generated clients name methods by."""

from __future__ import annotations

import re

from httpx import AsyncClient

READABLE = re.compile(r"^[a-z]+(-[a-z]+)+$")
METHODS = {"get", "post", "put", "patch", "delete"}


async def _operation_ids(client: AsyncClient) -> dict[str, str]:
    document = (await client.get("/api/v1/openapi.json")).json()
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


async def test_operation_ids_are_unique_and_readable(client: AsyncClient) -> None:
    ids = await _operation_ids(client)
    assert len(set(ids.values())) == len(ids)
    unreadable = {route: name for route, name in ids.items() if not READABLE.match(name)}
    assert unreadable == {}


async def test_operation_ids_name_the_collection_and_the_verb(client: AsyncClient) -> None:
    ids = await _operation_ids(client)
    assert ids["GET /api/v1/processes"] == "processes-list"
    assert ids["POST /api/v1/processes"] == "processes-create"
    assert ids["GET /api/v1/processes/{process_id}"] == "processes-get"
    assert ids["PATCH /api/v1/processes/{process_id}"] == "processes-update"
    assert ids["DELETE /api/v1/processes/{process_id}"] == "processes-delete"
    assert ids["GET /api/v1/departments/{department_id}/processes"] == (
        "departments-processes-list"
    )
    assert ids["GET /api/v1/audit-events"] == "audit-events-list"


async def test_routes_the_rule_misnames_have_explicit_operation_ids(client: AsyncClient) -> None:
    ids = await _operation_ids(client)
    assert ids["POST /api/v1/auth/token"] == "auth-token"
    assert ids["GET /api/v1/users/me"] == "users-me-get"
    assert ids["POST /api/v1/users/me/password"] == "users-me-password-change"
    assert ids["GET /api/v1/departments/{department_id}/tree"] == "departments-tree-get"
    assert ids["GET /api/v1/ready"] == "health-ready"
