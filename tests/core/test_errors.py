"""Every error a client can cause is an application/problem+json answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from sqlalchemy import text

from app.core.config import Settings
from app.core.constraints import register_constraints
from app.core.database import SessionDep
from app.core.errors import Conflict
from app.main import create_app
from tests.conftest import make_settings

PROBLEM = "application/problem+json"


def _probe_value_taken(subject: object | None) -> Conflict:
    return Conflict("The probe value is taken.")


class Payload(BaseModel):
    name: str
    count: int


def _add_probe_routes(app: FastAPI) -> None:
    @app.post("/api/v1/_probe/echo")
    async def echo(payload: Payload) -> Payload:
        return payload

    @app.get("/api/v1/_probe/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail: password=hunter2")

    @app.get("/api/v1/_probe/conflict")
    async def conflict() -> None:
        raise Conflict("Name is taken.")

    @app.get("/api/v1/_probe/query")
    async def query(session: SessionDep) -> dict[str, int]:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    @app.get("/api/v1/_probe/unique")
    async def unique(session: SessionDep) -> None:
        await session.execute(text("CREATE TEMP TABLE t (v int CONSTRAINT uq_t_v UNIQUE)"))
        await session.execute(text("INSERT INTO t VALUES (1), (1)"))

    register_constraints({"uq_probe_registered": _probe_value_taken})

    @app.get("/api/v1/_probe/registered")
    async def registered(session: SessionDep) -> None:
        await session.execute(
            text("CREATE TEMP TABLE r (v int CONSTRAINT uq_probe_registered UNIQUE)")
        )
        await session.execute(text("INSERT INTO r VALUES (1), (1)"))

    @app.get("/api/v1/_probe/nul")
    async def nul(session: SessionDep) -> None:
        await session.execute(text("SELECT CAST(:v AS text)"), {"v": "a\x00b"})


async def _client_for(settings: Settings) -> AsyncIterator[AsyncClient]:
    app = create_app(settings)
    _add_probe_routes(app)
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def probe(settings: Settings) -> AsyncIterator[AsyncClient]:
    async for client in _client_for(settings):
        yield client


@pytest.fixture
async def probe_without_database(redis_url: str) -> AsyncIterator[AsyncClient]:
    settings = make_settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
        redis_url=redis_url,
        db_connect_timeout=1,
    )
    async for client in _client_for(settings):
        yield client


def _assert_problem(response_json: dict[str, object], status: int) -> None:
    assert response_json["status"] == status
    assert str(response_json["type"]).startswith("urn:process-atlas:problem:")
    assert response_json["title"]
    assert "request_id" in response_json
    assert "instance" in response_json


async def test_unknown_route_answers_404_problem(probe: AsyncClient) -> None:
    response = await probe.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    _assert_problem(response.json(), 404)
    assert response.json()["instance"] == "/api/v1/nothing-here"


async def test_wrong_method_answers_405_problem_with_allow(probe: AsyncClient) -> None:
    response = await probe.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "GET" in response.headers["allow"]
    _assert_problem(response.json(), 405)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "title"),
    [
        ("GET", "/api/v1/nothing-here", None, 404, "Not Found"),
        ("DELETE", "/api/v1/health", None, 405, "Method Not Allowed"),
        ("GET", "/api/v1/_probe/conflict", None, 409, "Conflict"),
        ("POST", "/api/v1/_probe/echo", b"{" + b" " * 1024 * 1024 + b"}", 413, "Content Too Large"),
        ("POST", "/api/v1/_probe/echo", b'{"name": 1}', 422, "Unprocessable Content"),
    ],
)
async def test_titles_are_pinned_whatever_the_python_version(
    probe: AsyncClient, method: str, path: str, body: bytes | None, status: int, title: str
) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    response = await probe.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["title"] == title


async def test_bad_body_answers_422_with_field_errors(probe: AsyncClient) -> None:
    response = await probe.post("/api/v1/_probe/echo", json={"name": "x", "count": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    _assert_problem(body, 422)
    assert body["errors"] == [
        {
            "loc": ["body", "count"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]


async def test_malformed_json_answers_422(probe: AsyncClient) -> None:
    response = await probe.post(
        "/api/v1/_probe/echo", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_unhandled_error_answers_500_without_internals(
    probe: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await probe.get("/api/v1/_probe/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["x-request-id"] == "req-500"
    body = response.json()
    _assert_problem(body, 500)
    assert body["request_id"] == "req-500"
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert any("unhandled error" in record.getMessage() for record in caplog.records)


async def test_domain_error_carries_its_status_and_detail(probe: AsyncClient) -> None:
    response = await probe.get("/api/v1/_probe/conflict")
    assert response.status_code == 409
    assert response.json()["detail"] == "Name is taken."


async def test_unique_violation_answers_409_not_500(probe: AsyncClient) -> None:
    response = await probe.get("/api/v1/_probe/unique")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["constraint"] == "uq_t_v"
    assert "already exists" in response.json()["detail"]


async def test_registered_constraint_answers_its_domain_error(probe: AsyncClient) -> None:
    response = await probe.get("/api/v1/_probe/registered")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    _assert_problem(body, 409)
    assert body["detail"] == "The probe value is taken."
    assert "constraint" not in body


async def test_nul_byte_in_text_answers_422_not_500(probe: AsyncClient) -> None:
    response = await probe.get("/api/v1/_probe/nul")
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_database_route_answers_503_when_postgres_is_unreachable(
    probe_without_database: AsyncClient,
) -> None:
    response = await probe_without_database.get("/api/v1/_probe/query")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"]
    _assert_problem(response.json(), 503)
    assert "Traceback" not in response.text


async def test_ready_answers_503_when_postgres_is_unreachable(
    probe_without_database: AsyncClient,
) -> None:
    response = await probe_without_database.get("/api/v1/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "down", "redis": "up"}


async def test_request_id_is_echoed_when_sane_and_replaced_when_not(probe: AsyncClient) -> None:
    sane = await probe.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert sane.headers["x-request-id"] == "abc-123"
    insane = await probe.get("/api/v1/health", headers={"X-Request-ID": "bad id\twith<tags>"})
    assert insane.headers["x-request-id"] != "bad id\twith<tags>"
    assert len(insane.headers["x-request-id"]) == 32
