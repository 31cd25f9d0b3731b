"""Conditional GETs: a single resource answers 304 to an If-None-Match naming its version.

Every GET by id (and /users/me) reads only the row's version when the header is sent and
answers 304, with the ETag and no body, without the full read; anything else is the
ordinary 200 (or 401, 403, 404, which come first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import EntityMixin
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process.models import Process
from app.domains.resource.models import Resource
from app.domains.role.models import Role
from app.domains.user.models import User
from tests.conftest import ClientFactory
from tests.factories import Factory
from tests.statements import count_statements

API = "/api/v1"


async def _process(factory: Factory) -> Process:
    process = Process(title="Qualify a supplier")
    factory.session.add(process)
    await factory.session.commit()
    return process


@dataclass(frozen=True)
class Kind:
    """One collection whose GET by id honours If-None-Match."""

    collection: str
    model: type[EntityMixin]
    make: Callable[[Factory], Awaitable[Any]]
    field: str
    """A text column a write can change (which makes a new version)."""

    def __str__(self) -> str:
        return self.collection


KINDS = [
    Kind("departments", Department, lambda f: f.department(), "name"),
    Kind("locations", Location, lambda f: f.location(), "name"),
    Kind("resources", Resource, lambda f: f.resource(), "name"),
    Kind("roles", Role, lambda f: f.role(), "name"),
    Kind("users", User, lambda f: f.user(), "full_name"),
    Kind("processes", Process, _process, "title"),
]


@pytest.fixture(params=KINDS, ids=str)
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


@dataclass
class Target:
    path: str
    entity: Any
    headers: dict[str, str]


@pytest.fixture
async def target(kind: Kind, factory: Factory) -> Target:
    """An entity of `kind` at version 1, and a reader of its collection."""
    entity = await kind.make(factory)
    reader = await factory.user(permissions=[f"{kind.collection}:read"])
    assert entity.version == 1
    return Target(f"{API}/{kind.collection}/{entity.id}", entity, factory.headers(reader))


async def _get(client: AsyncClient, target: Target, if_none_match: str | None) -> Response:
    headers = dict(target.headers)
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    return await client.get(target.path, headers=headers)


def _assert_not_modified(response: Response, version: int) -> None:
    assert response.status_code == 304, response.text
    assert response.headers["etag"] == f'W/"{version}"'
    assert response.content == b""
    assert "content-type" not in response.headers
    assert response.headers.get("content-length", "0") == "0"


@pytest.mark.parametrize(
    "tag",
    ['W/"1"', '"1"', 'W/"7", W/"1"', '"7",W/"1" , "8"', "*"],
    ids=["weak", "strong", "list", "list-unspaced", "star"],
)
async def test_a_tag_naming_the_current_version_answers_304(
    client: AsyncClient, target: Target, tag: str
) -> None:
    _assert_not_modified(await _get(client, target, tag), 1)


@pytest.mark.parametrize("tag", ['W/"2"', '"2", W/"3"', 'W/"abc"', '""', "garbage", ""], ids=repr)
async def test_a_tag_naming_another_version_answers_200_with_the_body(
    client: AsyncClient, target: Target, tag: str
) -> None:
    response = await _get(client, target, tag)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.json()["id"] == target.entity.id
    assert response.json()["version"] == 1


async def test_a_write_makes_the_old_tag_stale(
    client: AsyncClient, target: Target, kind: Kind, session: AsyncSession
) -> None:
    etag = (await _get(client, target, None)).headers["etag"]
    _assert_not_modified(await _get(client, target, etag), 1)
    setattr(target.entity, kind.field, "Changed by a write")
    await session.commit()

    response = await _get(client, target, etag)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()[kind.field] == "Changed by a write"
    _assert_not_modified(await _get(client, target, 'W/"2"'), 2)


async def test_the_304_carries_the_200s_headers_but_the_content_ones(
    client: AsyncClient, target: Target
) -> None:
    full = await _get(client, target, None)
    empty = await _get(client, target, full.headers["etag"])
    assert empty.status_code == 304
    content = {"content-type", "content-length"}
    assert set(empty.headers) == set(full.headers) - content
    for name in ("etag", "cache-control", "content-security-policy", "x-content-type-options"):
        assert empty.headers[name] == full.headers[name]
    assert empty.headers["cache-control"] == "no-store"


async def test_without_a_token_a_matching_tag_answers_401(
    client: AsyncClient, target: Target
) -> None:
    response = await client.get(target.path, headers={"If-None-Match": "*"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_without_the_read_permission_a_matching_tag_answers_403(
    client: AsyncClient, target: Target, factory: Factory, kind: Kind
) -> None:
    other = "roles" if kind.collection != "roles" else "departments"
    outsider = await factory.user(permissions=[f"{other}:read"])
    for tag in ('W/"1"', "*"):
        response = await client.get(
            target.path, headers={**factory.headers(outsider), "If-None-Match": tag}
        )
        assert response.status_code == 403


@pytest.mark.parametrize("tag", [None, "*", 'W/"1"'], ids=["no-header", "star", "weak"])
async def test_an_unknown_id_answers_404_whatever_the_tag(
    client: AsyncClient, target: Target, kind: Kind, tag: str | None
) -> None:
    unknown = Target(f"{API}/{kind.collection}/424242", None, target.headers)
    response = await _get(client, unknown, tag)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def _version_lookup(statement: str, model: type[EntityMixin]) -> bool:
    """Whether `statement` is `check_not_modified`'s: the version of one row, nothing else."""
    table = model.__tablename__  # type: ignore[attr-defined]
    return statement.startswith(f"SELECT {table}.version \nFROM {table} \nWHERE {table}.id = ")


async def test_a_304_costs_the_version_lookup_only(
    client: AsyncClient, target: Target, kind: Kind
) -> None:
    await _get(client, target, None)  # warm the token and permission caches
    with count_statements() as statements:
        _assert_not_modified(await _get(client, target, 'W/"1"'), 1)
    assert len(statements) == 1, statements
    assert _version_lookup(statements[0], kind.model), statements[0]


async def test_a_stale_tag_costs_the_version_lookup_and_the_ordinary_read(
    client: AsyncClient, target: Target, kind: Kind
) -> None:
    await _get(client, target, None)
    with count_statements() as plain:
        assert (await _get(client, target, None)).status_code == 200
    with count_statements() as stale:
        assert (await _get(client, target, 'W/"2"')).status_code == 200
    assert not any(_version_lookup(statement, kind.model) for statement in plain)
    assert _version_lookup(stale[0], kind.model)
    assert stale[1:] == plain


async def test_a_process_without_the_header_is_still_one_statement(
    client: AsyncClient, factory: Factory
) -> None:
    process = await _process(factory)
    headers = factory.headers(await factory.user(permissions=["processes:read"]))
    path = f"{API}/processes/{process.id}"
    await client.get(path, headers=headers)
    with count_statements() as statements:
        assert (await client.get(path, headers=headers)).status_code == 200
    assert len(statements) == 1


async def test_users_me_answers_304_to_the_callers_own_version(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    user = await factory.user()
    headers = factory.headers(user)
    me = await client.get(f"{API}/users/me", headers=headers)
    assert me.status_code == 200
    etag = me.headers["etag"]
    with count_statements() as statements:
        response = await client.get(f"{API}/users/me", headers={**headers, "If-None-Match": etag})
    _assert_not_modified(response, 1)
    assert len(statements) == 1
    assert _version_lookup(statements[0], User)

    user.job_title = "Auditor"
    await session.commit()
    response = await client.get(f"{API}/users/me", headers={**headers, "If-None-Match": etag})
    assert response.status_code == 200
    assert response.json()["job_title"] == "Auditor"
    assert response.headers["etag"] == 'W/"2"'


async def test_users_me_without_a_token_answers_401(client: AsyncClient) -> None:
    response = await client.get(f"{API}/users/me", headers={"If-None-Match": "*"})
    assert response.status_code == 401


async def test_lists_send_no_etag_and_ignore_the_header(
    client: AsyncClient, target: Target, kind: Kind
) -> None:
    response = await client.get(
        f"{API}/{kind.collection}", headers={**target.headers, "If-None-Match": "*"}
    )
    assert response.status_code == 200
    assert "etag" not in response.headers
    assert response.json()["items"]


CONDITIONAL_ROUTES = [
    f"{API}/departments/{{department_id}}",
    f"{API}/locations/{{location_id}}",
    f"{API}/resources/{{resource_id}}",
    f"{API}/roles/{{role_id}}",
    f"{API}/users/{{user_id}}",
    f"{API}/users/me",
    f"{API}/processes/{{process_id}}",
]


async def test_the_openapi_document_names_the_header_and_the_304(client: AsyncClient) -> None:
    paths = (await client.get(f"{API}/openapi.json")).json()["paths"]
    for path in CONDITIONAL_ROUTES:
        operation = paths[path]["get"]
        headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["if-none-match"], path
        assert "content" not in operation["responses"]["304"], path
        assert "ETag" in operation["responses"]["304"]["headers"], path
    others = [
        f"{method.upper()} {path}"
        for path, item in paths.items()
        for method, operation in item.items()
        if path not in CONDITIONAL_ROUTES or method != "get"
        if "304" in operation["responses"]
        or any(p["name"] == "if-none-match" for p in operation.get("parameters", []))
    ]
    assert others == []


async def test_a_browser_may_send_the_header_across_origins(client_with: ClientFactory) -> None:
    origin = "https://app.example"
    async with client_with(CORS_ORIGINS=origin) as client:
        response = await client.options(
            f"{API}/processes/1",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization, if-none-match",
            },
        )
    assert response.status_code == 200
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "if-none-match"} <= allowed
