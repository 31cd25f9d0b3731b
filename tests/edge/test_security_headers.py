"""Every answer carries the security headers; only /docs relaxes the CSP, only HTTPS gets HSTS."""

from __future__ import annotations

from httpx import AsyncClient

from tests.conftest import ClientFactory

API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _assert_common(headers: dict[str, str]) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"


async def test_api_answers_carry_the_strict_policy(client: AsyncClient) -> None:
    for response in (
        await client.get("/api/v1/health"),
        await client.get("/api/v1/no-such-route"),
        await client.get("/api/v1/permissions"),
    ):
        _assert_common(dict(response.headers))
        assert response.headers["content-security-policy"] == API_CSP
        assert "strict-transport-security" not in response.headers


async def test_docs_get_a_policy_that_lets_swagger_ui_load(client: AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    _assert_common(dict(response.headers))
    policy = response.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in policy
    assert "script-src 'unsafe-inline' https://cdn.jsdelivr.net" in policy
    assert "frame-ancestors 'none'" in policy
    assert policy != API_CSP
    assert "https://cdn.jsdelivr.net" in response.text


async def test_openapi_document_keeps_the_strict_policy(client: AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.headers["content-security-policy"] == API_CSP


async def test_hsts_only_over_https(client_with: ClientFactory) -> None:
    async with client_with() as client:
        plain = await client.get("/api/v1/health")
        secure = await client.get("https://test/api/v1/health")
    assert "strict-transport-security" not in plain.headers
    assert secure.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_hsts_on_every_answer_when_the_deployment_is_behind_https(
    client_with: ClientFactory,
) -> None:
    async with client_with(behind_https=True, hsts_max_age_seconds=600) as client:
        response = await client.get("/api/v1/health")
    assert response.headers["strict-transport-security"] == "max-age=600; includeSubDomains"


async def test_hsts_follows_x_forwarded_proto_from_a_trusted_proxy(
    client_with: ClientFactory,
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    async with client_with(trusted_proxies="127.0.0.1") as client:
        trusted = await client.get("/api/v1/health", headers=forwarded)
    async with client_with() as client:
        untrusted = await client.get("/api/v1/health", headers=forwarded)
    assert "strict-transport-security" in trusted.headers
    assert "strict-transport-security" not in untrusted.headers


async def test_refusals_from_the_edge_carry_the_headers_too(client_with: ClientFactory) -> None:
    async with client_with(max_body_bytes=10) as client:
        response = await client.post("/api/v1/auth/refresh", content=b"x" * 11)
    assert response.status_code == 413
    _assert_common(dict(response.headers))
    assert response.headers["content-security-policy"] == API_CSP


async def test_headers_can_be_switched_off(client_with: ClientFactory) -> None:
    async with client_with(security_headers_enabled=False) as client:
        response = await client.get("/api/v1/health")
    assert "content-security-policy" not in response.headers
    assert "x-frame-options" not in response.headers
