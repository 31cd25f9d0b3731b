"""Every answer carries the security headers; only /docs relaxes the CSP, only HTTPS gets HSTS."""

from __future__ import annotations

import base64
import hashlib
import re

from asgi_lifespan import LifespanManager
from fastapi import Response
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.main import create_app
from tests.auth.helpers import login
from tests.conftest import ClientFactory
from tests.factories import Factory

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


def _directives(policy: str) -> dict[str, list[str]]:
    return {
        name: sources for name, *sources in (directive.split() for directive in policy.split(";"))
    }


def _inline_script_hashes(html: str) -> set[str]:
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    }


async def test_docs_policy_allows_this_origin_and_the_pages_own_scripts_only(
    client: AsyncClient,
) -> None:
    for path in ("/docs", "/docs/oauth2-redirect"):
        response = await client.get(path)
        assert response.status_code == 200
        _assert_common(dict(response.headers))
        policy = _directives(response.headers["content-security-policy"])
        scripts = _inline_script_hashes(response.text)
        assert scripts, "Swagger UI starts from an inline script"
        assert policy["script-src"][0] == "'self'"
        assert scripts <= set(policy["script-src"][1:])
        assert all(source.startswith("'sha256-") for source in policy["script-src"][1:])
        assert policy["default-src"] == ["'none'"]
        assert policy["style-src"] == ["'self'"]
        assert policy["img-src"] == ["'self'", "data:"]
        assert policy["connect-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        assert "https:" not in response.headers["content-security-policy"]


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


async def test_token_answers_are_never_stored(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    issued = await login(client, user.email)
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": issued.json()["refresh_token"]}
    )
    for response in (issued, refreshed):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"


async def test_answers_to_requests_with_credentials_are_not_stored(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["users:read"])
    for response in (
        await client.get(f"/api/v1/users/{user.id}", headers=factory.headers(user)),
        await client.get("/api/v1/users/999999", headers=factory.headers(user)),
        await client.get("/api/v1/permissions", headers={"Authorization": "Bearer forged"}),
    ):
        assert response.headers["cache-control"] == "no-store"
    assert "cache-control" not in (await client.get("/api/v1/health")).headers


async def test_a_cache_policy_the_route_sets_wins(settings: Settings, clean: None) -> None:
    app = create_app(settings)

    @app.get("/api/v1/cacheable")
    async def cacheable(response: Response) -> dict[str, str]:
        response.headers["Cache-Control"] = "private, max-age=60"
        return {}

    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        response = await client.get("/api/v1/cacheable", headers={"Authorization": "Bearer x"})
    assert response.headers["cache-control"] == "private, max-age=60"
