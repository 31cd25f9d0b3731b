"""Hostile and broken requests get a 4xx problem, never a 500 and never a partial write.

The text fields come from the app's own OpenAPI document, so a field added later is
covered without editing this file: every string in every create and update body gets a
NUL byte (PostgreSQL refuses those) and a value one character past its documented maximum.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import Factory
from tests.reliability.conftest import PROBLEM, assert_problem

API = "/api/v1"
OPENAPI: dict[str, Any] = create_app(
    make_settings(database_url="postgresql://x@y/z", redis_url="redis://")
).openapi()
SCHEMAS: dict[str, Any] = OPENAPI["components"]["schemas"]
_unique = itertools.count(1)


def _valid_body(collection: str) -> dict[str, Any]:
    """The smallest valid create body of a collection (unique where it must be)."""
    n = f"{next(_unique)}-{uuid.uuid4().hex[:6]}"
    return {
        "users": {"email": f"abuse-{n}@example.com", "full_name": "Abused", "password": "x" * 16},
        "roles": {"name": f"Role {n}"},
        "departments": {"name": f"Department {n}"},
        "locations": {"name": "Location", "kind": "site"},
        "resources": {"name": "Resource", "kind": "system"},
        "processes": {"title": "Process"},
    }[collection]


BODIES = {
    ("users", "create"): "UserCreate",
    ("users", "update"): "UserUpdate",
    ("users/me", "update"): "UserSelfUpdate",
    ("roles", "create"): "RoleCreate",
    ("roles", "update"): "RoleUpdate",
    ("departments", "create"): "DepartmentCreate",
    ("departments", "update"): "DepartmentUpdate",
    ("locations", "create"): "LocationCreate",
    ("locations", "update"): "LocationUpdate",
    ("resources", "create"): "ResourceCreate",
    ("resources", "update"): "ResourceUpdate",
    ("processes", "create"): "ProcessCreate",
    ("processes", "update"): "ProcessUpdate",
}


def _text_fields(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[Any]:
    """(path, maxLength) of every string in a body schema, nested objects included."""
    for name, field in schema.get("properties", {}).items():
        for option in field.get("anyOf", [field]):
            target = SCHEMAS[option["$ref"].rsplit("/", 1)[1]] if "$ref" in option else option
            if target.get("type") == "object":
                yield from _text_fields(target, (*prefix, name))
            elif target.get("type") == "string" and "enum" not in target:
                yield (*prefix, name), target.get("maxLength")
            else:
                continue
            break


WRITES = [
    pytest.param(collection, operation, name, id=f"{operation}-{collection}")
    for (collection, operation), name in BODIES.items()
]


def _with(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    target = changed
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return changed


async def _write(
    client: AsyncClient, headers: dict[str, str], collection: str, operation: str, body: Any
) -> tuple[Any, str | None]:
    """Send `body` as a create, or as an update of a fresh entity; the answer and its path."""
    if operation == "create":
        return await client.post(f"{API}/{collection}", headers=headers, json=body), None
    if collection == "users/me":
        return await client.patch(f"{API}/users/me", headers=headers, json=body), f"{API}/users/me"
    created = await client.post(
        f"{API}/{collection}", headers=headers, json=_valid_body(collection)
    )
    assert created.status_code == 201, created.text
    path = created.headers["location"]
    return await client.patch(path, headers=headers, json=body), path


@pytest.mark.parametrize(("collection", "operation", "schema"), WRITES)
async def test_a_nul_byte_in_any_text_field_answers_422_and_writes_nothing(
    client: AsyncClient, admin_headers: dict[str, str], collection: str, operation: str, schema: str
) -> None:
    for path, _ in _text_fields(SCHEMAS[schema]):
        base = _valid_body(collection) if operation == "create" else {}
        body = _with(base, path, "a\x00b")
        response, entity = await _write(client, admin_headers, collection, operation, body)
        assert response.status_code == 422, (path, response.text)
        assert_problem(response, 422)
        if entity is not None and collection != "users/me":
            assert (await client.get(entity, headers=admin_headers)).headers["etag"] == 'W/"1"'


@pytest.mark.parametrize(("collection", "operation", "schema"), WRITES)
async def test_text_one_past_its_documented_maximum_answers_422(
    client: AsyncClient, admin_headers: dict[str, str], collection: str, operation: str, schema: str
) -> None:
    # Fields without a maximum (an email, an IANA zone name) are checked in other ways.
    for path, limit in _text_fields(SCHEMAS[schema]):
        if limit is None:
            continue
        base = _valid_body(collection) if operation == "create" else {}
        body = _with(base, path, "x" * (limit + 1))
        response, _ = await _write(client, admin_headers, collection, operation, body)
        assert response.status_code == 422, (path, response.text)
        assert_problem(response, 422)


LISTS = [
    path
    for path, item in OPENAPI["paths"].items()
    if "get" in item and any(p["name"] == "limit" for p in item["get"].get("parameters", []))
]


def _text_parameters(path: str) -> list[str]:
    return [
        parameter["name"]
        for parameter in OPENAPI["paths"][path]["get"]["parameters"]
        if any(
            option.get("type") == "string"
            for option in parameter["schema"].get("anyOf", [parameter["schema"]])
        )
    ]


@pytest.mark.parametrize("path", LISTS)
async def test_a_nul_byte_in_any_text_query_parameter_answers_422(
    client: AsyncClient, factory: Factory, admin_headers: dict[str, str], path: str
) -> None:
    url = path
    for parent in ("department", "location", "resource", "role"):
        if f"{{{parent}_id}}" in url:
            made = await getattr(factory, parent)()
            url = url.replace(f"{{{parent}_id}}", str(made.id))
    for name in _text_parameters(path):
        response = await client.get(url, headers=admin_headers, params={name: "a\x00b"})
        assert response.status_code == 422, (name, response.text)
        assert_problem(response, 422)


# --- content types and bodies ---------------------------------------------------------

JSON_WRITES = [
    ("POST", "/auth/refresh"),
    ("POST", "/users"),
    ("PATCH", "/users/me"),
    ("POST", "/users/me/password"),
    ("POST", "/roles"),
    ("POST", "/departments"),
    ("POST", "/locations"),
    ("POST", "/resources"),
    ("POST", "/processes"),
    ("PATCH", "/processes/1"),
]


@pytest.mark.parametrize(("method", "path"), JSON_WRITES)
async def test_a_body_that_is_not_json_answers_415(
    client: AsyncClient, admin_headers: dict[str, str], method: str, path: str
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/json", None):
        headers = dict(admin_headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        response = await client.request(
            method, f"{API}{path}", headers=headers, content=b'{"a": 1}'
        )
        assert_problem(response, 415)


async def test_json_media_types_with_parameters_or_suffixes_are_accepted(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            f"{API}/roles",
            headers={**admin_headers, "Content-Type": content_type},
            content=f'{{"name": "{content_type}"}}'.encode(),
        )
        assert response.status_code == 201, response.text


async def test_routes_without_a_json_body_ignore_the_415_rule(
    client: AsyncClient, admin_headers: dict[str, str], factory: Factory
) -> None:
    user = await factory.user()
    login = await client.post(
        f"{API}/auth/token", data={"username": user.email, "password": "wrong password"}
    )
    assert login.status_code == 401  # a form route takes its form
    empty = await client.post(f"{API}/auth/logout", headers=admin_headers)
    assert empty.status_code == 204  # no body, no content type: nothing to refuse


UNREADABLE_JSON = {
    "not UTF-8": b"\xff\xfe{}",
    "Latin-1 text": b'{"title": "caf\xe9"}',
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "a value nested 5,000 deep": b'{"title": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "truncated": b'{"title": "x"',
    "empty": b"",
}


async def test_unreadable_json_answers_422_not_400_or_500(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    headers = {**admin_headers, "Content-Type": "application/json"}
    for case, body in UNREADABLE_JSON.items():
        response = await client.post(f"{API}/processes", headers=headers, content=body)
        assert response.status_code == 422, (case, response.text)
        assert_problem(response, 422)


async def test_501_ids_in_any_id_list_answer_422(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    too_many = list(range(1, 502))
    for field in ("department_ids", "location_ids", "resource_ids", "role_ids"):
        body = {"title": "Too many", field: too_many}
        response = await client.post(f"{API}/processes", headers=admin_headers, json=body)
        assert response.status_code == 422, field
        assert_problem(response, 422)
    user = {**_valid_body("users"), "role_ids": too_many}
    assert_problem(await client.post(f"{API}/users", headers=admin_headers, json=user), 422)


WRONG_TYPES = [
    ("/resources", {"name": "R", "kind": "system", "quantity": False}),
    ("/resources", {"name": "R", "kind": "system", "quantity": "3"}),
    ("/processes", {"title": "P", "department_ids": ["1"]}),
    ("/processes", {"title": "P", "role_ids": [True]}),
    ("/processes", {"title": "P", "owner_id": 1.5}),
    ("/users", {"email": "b@example.com", "full_name": "B", "password": "x" * 16, "is_active": 0}),
    ("/departments", {"name": "D", "parent_id": "1"}),
]


async def test_json_values_of_the_wrong_type_are_not_coerced(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for path, body in WRONG_TYPES:
        response = await client.post(f"{API}{path}", headers=admin_headers, json=body)
        assert response.status_code == 422, (path, body, response.text)
        assert_problem(response, 422)


async def test_null_for_a_required_field_answers_422_even_with_a_stale_if_match(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await client.post(f"{API}/processes", headers=admin_headers, json={"title": "T"})
    path = created.headers["location"]
    response = await client.patch(
        path, headers={**admin_headers, "If-Match": 'W/"9"'}, json={"title": None}
    )
    assert_problem(response, 422)
    assert response.json()["errors"][0]["type"] == "null_forbidden"


# --- query strings ----------------------------------------------------------------------

METACHARACTERS = ["'; DROP TABLE processes; --", "%", "_", "\\", ".*[(", "$1", "' OR '1'='1", "😀"]


async def test_sql_and_regex_metacharacters_in_q_match_literally(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    titles = ["plain", *(f"a{q}b" for q in METACHARACTERS)]
    for title in titles:
        created = await client.post(
            f"{API}/processes", headers=admin_headers, json={"title": title}
        )
        assert created.status_code == 201
    searchable = [path for path in LISTS if "{" not in path and "q" in _text_parameters(path)]
    assert f"{API}/processes" in searchable
    for q in METACHARACTERS:
        for path in searchable:
            response = await client.get(path, headers=admin_headers, params={"q": q})
            assert response.status_code == 200, (path, q, response.text)
        found = await client.get(f"{API}/processes", headers=admin_headers, params={"q": q})
        matched = sorted(item["title"] for item in found.json()["items"])
        assert matched == sorted(t for t in titles if q in t), q


MALFORMED_SORTS = [
    "title;DROP TABLE processes", "-", ",,,", "--title", "title,-", "id desc", "title'", "😀",
]  # fmt: skip


async def test_unknown_or_malformed_sort_answers_422_or_is_ignored_never_500(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for sort in MALFORMED_SORTS:
        response = await client.get(
            f"{API}/processes", headers=admin_headers, params={"sort": sort}
        )
        assert response.status_code in {200, 422}, (sort, response.text)
        if response.status_code == 422:
            assert_problem(response, 422)


BAD_FILTERS = [
    ("limit", "0"),
    ("limit", "-1"),
    ("limit", "201"),
    ("limit", str(10**30)),
    ("limit", "1e3"),
    ("status", "archived'--"),
    ("owner_id", "-1"),
    ("owner_id", str(2**63)),
    ("created_before", "0.5"),
    ("created_after", "yesterday"),
    ("include_descendants", "maybe"),
]


async def test_out_of_range_or_malformed_filters_answer_422(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for name, value in BAD_FILTERS:
        response = await client.get(f"{API}/processes", headers=admin_headers, params={name: value})
        assert response.status_code == 422, (name, value, response.text)
        assert_problem(response, 422)


async def test_department_and_location_subtree_filters_combine(
    client: AsyncClient, admin_headers: dict[str, str], factory: Factory
) -> None:
    """Both filters with include_descendants used to build two CTEs of one name: a 500."""
    department, location = await factory.department(), await factory.location()
    body = {"title": "Both", "department_ids": [department.id], "location_ids": [location.id]}
    assert (
        await client.post(f"{API}/processes", headers=admin_headers, json=body)
    ).status_code == 201
    params = {
        "department_id": department.id,
        "location_id": location.id,
        "include_descendants": "true",
        "include_total": "true",
    }
    response = await client.get(f"{API}/processes", headers=admin_headers, params=params)
    assert response.status_code == 200, response.text
    assert [item["title"] for item in response.json()["items"]] == ["Both"]


@pytest.mark.parametrize("collection", ["processes", "roles", "departments", "audit-events"])
async def test_forged_or_truncated_cursors_or_one_of_another_sort_answer_422(
    client: AsyncClient, admin_headers: dict[str, str], collection: str
) -> None:
    for n in range(3):
        await client.post(f"{API}/processes", headers=admin_headers, json={"title": f"P{n}"})
        await client.post(f"{API}/roles", headers=admin_headers, json={"name": f"R{n}"})
        await client.post(f"{API}/departments", headers=admin_headers, json={"name": f"D{n}"})
    url = f"{API}/{collection}"
    first = await client.get(url, headers=admin_headers, params={"limit": 1})
    cursor = first.json()["next_cursor"]
    assert cursor
    assert (
        await client.get(url, headers=admin_headers, params={"cursor": cursor})
    ).status_code == 200
    payload, _, signature = cursor.partition(".")
    forged = [
        cursor[: len(cursor) // 2],
        cursor[:-1],
        f"{payload}.{'A' * len(signature)}",
        f"{payload[:-2]}{'AB' if payload[-2:] != 'AB' else 'CD'}.{signature}",
        "not-a-cursor",
        "....",
        "%00",
    ]
    for value in forged:
        response = await client.get(url, headers=admin_headers, params={"cursor": value})
        assert_problem(response, 422)
    other_sort = await client.get(
        url, headers=admin_headers, params={"cursor": cursor, "sort": "-created_at"}
    )
    assert_problem(other_sort, 422)


async def test_a_cursor_of_another_list_answers_422(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    for n in range(3):
        await client.post(f"{API}/processes", headers=admin_headers, json={"title": f"P{n}"})
        await client.post(f"{API}/roles", headers=admin_headers, json={"name": f"R{n}"})
    first = await client.get(f"{API}/processes", headers=admin_headers, params={"limit": 1})
    cursor = first.json()["next_cursor"]
    foreign = await client.get(f"{API}/roles", headers=admin_headers, params={"cursor": cursor})
    assert_problem(foreign, 422)


ITEM_PATHS = sorted(
    {path for path in OPENAPI["paths"] if "{" in path},
)


RAW_IDS = [str(2**63), str(2**63 - 1), "9" * 40, "0", "-1", "1e3", "0x10", "1.0", "%00", "🙂"]


@pytest.mark.parametrize("template", ITEM_PATHS)
async def test_path_ids_past_bigint_or_malformed_answer_422_or_404(
    client: AsyncClient, admin_headers: dict[str, str], template: str
) -> None:
    methods = [m for m in ("get", "patch", "delete") if m in OPENAPI["paths"][template]]
    for raw_id, method in itertools.product(RAW_IDS, methods):
        path = template.split("{")[0] + raw_id + template.split("}")[1]
        body = {} if method == "patch" else None
        response = await client.request(method.upper(), path, headers=admin_headers, json=body)
        assert response.status_code in {404, 422}, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM


async def test_a_method_a_path_does_not_take_answers_405_naming_every_method_it_takes(
    client: AsyncClient, admin_headers: dict[str, str]
) -> None:
    item = await client.options(f"{API}/users/1", headers=admin_headers)
    assert_problem(item, 405)
    assert item.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    me = await client.delete(f"{API}/users/me", headers=admin_headers)
    assert_problem(me, 405)
    assert me.headers["allow"] == "GET, HEAD, PATCH"
