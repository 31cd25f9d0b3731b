"""A trailing-slash redirect points at a path on this server, never at the request's Host."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from tests.factories import Factory


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/api/v1/users/", "/api/v1/users"),
        ("/api/v1/users/?limit=5&q=a%26b", "/api/v1/users?limit=5&q=a%26b"),
        ("/api/v1/health/", "/api/v1/health"),
    ],
)
async def test_slash_redirect_is_relative_whatever_the_host_header(
    client: AsyncClient, path: str, location: str
) -> None:
    response = await client.get(path, headers={"Host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == location


async def test_followed_redirect_reaches_the_route(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user(permissions=["users:read"])
    response = await client.get(
        "/api/v1/users/?limit=1", headers=factory.headers(user), follow_redirects=True
    )
    assert response.status_code == 200
    assert str(response.url) == "http://test/api/v1/users?limit=1"


async def test_path_without_a_route_either_way_is_a_404_problem(client: AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-route/", headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "location" not in response.headers
