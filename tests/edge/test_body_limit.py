"""Bodies over MAX_BODY_BYTES are refused with a 413 problem, declared or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from httpx import AsyncClient

from tests.conftest import ClientFactory

PROBLEM = "application/problem+json"
LIMIT = 1024 * 1024


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


async def test_declared_length_over_the_limit_answers_413_before_the_app_runs(
    client: AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/refresh",
        content=b"{" + b" " * LIMIT + b"}",
        headers={"Content-Type": "application/json", "X-Request-ID": "big-1"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:process-atlas:problem:payload-too-large"
    assert body["detail"] == f"The request body is larger than {LIMIT} bytes."
    assert body["request_id"] == "big-1"


async def test_chunked_body_over_the_limit_answers_413(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/refresh",
        content=_chunks(LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 413


async def test_body_at_the_limit_reaches_the_app(client: AsyncClient) -> None:
    declared = await client.post(
        "/api/v1/auth/refresh",
        content=b'{"refresh_token": "nope"}'.ljust(LIMIT),
        headers={"Content-Type": "application/json"},
    )
    streamed = await client.post(
        "/api/v1/auth/refresh",
        content=_chunks(LIMIT),
        headers={"Content-Type": "application/json"},
    )
    assert declared.status_code == 401
    assert streamed.status_code == 422


async def test_limit_is_configurable(client_with: ClientFactory) -> None:
    async with client_with(max_body_bytes=32) as client:
        small = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x"})
        large = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 16})
    assert small.status_code == 401
    assert large.status_code == 413
