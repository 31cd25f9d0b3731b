"""Log lines: one access line per request, the request id everywhere, and no secrets."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from httpx import AsyncClient

from app.core.logging import TextFormatter
from tests.auth.helpers import login
from tests.conftest import ClientFactory
from tests.edge.conftest import LogLines, captured_logs
from tests.factories import PASSWORD, Factory


async def test_each_request_writes_one_access_line(
    client: AsyncClient, factory: Factory, log_lines: LogLines
) -> None:
    user = await factory.user()
    response = await client.get(
        f"/api/v1/users/{user.id}",
        headers={**factory.headers(user), "X-Request-ID": "trace-42"},
    )
    assert response.status_code in {200, 403}
    [line] = log_lines.access()
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/users/{user_id}"
    assert line["status"] == response.status_code
    assert line["request_id"] == "trace-42"
    assert line["user_id"] == user.id
    assert line["client_ip"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0


async def test_anonymous_requests_log_no_user(client: AsyncClient, log_lines: LogLines) -> None:
    await client.get("/api/v1/health")
    [line] = log_lines.access()
    assert "user_id" not in line
    assert line["route"] == "/api/v1/health"


async def test_request_id_reaches_problem_bodies_and_every_line_of_the_request(
    client: AsyncClient, factory: Factory, log_lines: LogLines
) -> None:
    user = await factory.user()
    response = await login(client, user.email, "wrong password, clearly")
    assert response.status_code == 401
    assert response.headers["x-request-id"] == response.json()["request_id"]
    request_id = response.headers["x-request-id"]
    lines = [line for line in log_lines.records() if line["logger"].startswith("app")]
    assert lines
    assert {line.get("request_id") for line in lines} == {request_id}


async def test_generated_request_id_is_the_one_logged_and_answered(
    client: AsyncClient, log_lines: LogLines
) -> None:
    response = await client.get("/api/v1/nowhere")
    [line] = log_lines.access()
    assert response.status_code == 404
    assert line["request_id"] == response.headers["x-request-id"]
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_passwords_tokens_and_cookies_never_reach_a_log_line(
    client: AsyncClient, factory: Factory, log_lines: LogLines
) -> None:
    user = await factory.user()
    wrong = "Tr0ub4dor&3-not-the-password"
    await login(client, user.email, wrong)
    tokens = (await login(client, user.email)).json()
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    cookie = "session=cookie-value-that-must-stay-private"
    await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {access}", "Cookie": cookie}
    )
    await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})  # reuse
    forged = factory.headers(user)["Authorization"] + "tampered"
    await client.get("/api/v1/users/me", headers={"Authorization": forged})

    text = log_lines.text
    assert len(log_lines.access()) == 6
    for secret in (PASSWORD, wrong, access, refresh, forged.split()[1], "cookie-value-that"):
        assert secret not in text


async def test_uvicorn_style_access_log_is_off_and_ours_can_be_too(
    client_with: ClientFactory, log_lines: LogLines
) -> None:
    async with client_with(access_log_enabled=False) as client:
        await client.get("/api/v1/health")
    assert log_lines.access() == []


def test_formatter_masks_credentials_that_slip_into_a_message(log_lines: LogLines) -> None:
    logger = logging.getLogger("app.test")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    logger.warning("upstream said: Authorization: Bearer abc.def-ghi")
    logger.warning("token %s was rejected", jwt)
    logger.warning("retry with password=hunter2&user=ann", extra={"refresh_token": "opaque-1"})
    try:
        raise ValueError('{"password": "swordfish"}')
    except ValueError:
        logger.exception("could not parse")

    text = log_lines.text
    for secret in ("abc.def-ghi", jwt, "hunter2", "opaque-1", "swordfish"):
        assert secret not in text
    first, second, third, fourth = log_lines.records()
    assert first["message"] == "upstream said: Authorization: Bearer [redacted]"
    assert second["message"] == "token [redacted] was rejected"
    assert third["message"] == "retry with password=[redacted]&user=ann"
    assert third["refresh_token"] == "[redacted]"
    assert '"password": "[redacted]"' in fourth["exception"]


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """What `LOG_JSON=false` prints (`make dev`)."""
    with captured_logs(TextFormatter(), logging.INFO) as stream:
        yield stream


def _access_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if " /api/" in line]


async def test_plain_access_line_keeps_request_id_method_route_status_duration_and_user(
    client: AsyncClient, factory: Factory, text_log: io.StringIO
) -> None:
    user = await factory.user()
    response = await client.get(
        f"/api/v1/users/{user.id}",
        headers={**factory.headers(user), "X-Request-ID": "trace-42"},
    )
    [line] = _access_lines(text_log.getvalue())
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d INFO  GET /api/v1/users/\{{user_id\}} {response.status_code} "
        rf"\d+\.\dms rid=trace-42 user={user.id}",
        line,
    ), line


async def test_plain_access_line_shortens_a_generated_request_id_and_names_no_anonymous_user(
    client: AsyncClient, text_log: io.StringIO
) -> None:
    response = await client.get("/api/v1/health")
    [line] = _access_lines(text_log.getvalue())
    request_id = response.headers["x-request-id"]
    assert line.endswith(f"GET /api/v1/health 200 {line.split()[-2]} rid={request_id[:8]}…")
    assert "user=" not in line


def test_plain_lines_show_extra_fields_and_mask_credentials(text_log: io.StringIO) -> None:
    logger = logging.getLogger("app.test")
    logger.warning(
        "redis: no answer, version not checked",
        extra={"error": "ConnectionError('refused')", "refresh_token": "opaque-1"},
    )
    logger.info("retry with password=hunter2")

    first, second = text_log.getvalue().splitlines()
    assert first.endswith(
        "WARNING app.test: redis: no answer, version not checked "
        "error=ConnectionError('refused') refresh_token=[redacted]"
    )
    assert second.endswith("INFO  app.test: retry with password=[redacted]")
