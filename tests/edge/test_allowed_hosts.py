"""ALLOWED_HOSTS: other hosts get a 400 problem; probes and metrics answer by any address."""

from __future__ import annotations

import pytest

from tests.conftest import ClientFactory

HOSTS = "api.example,*.atlas.example"


@pytest.mark.parametrize(
    "host", ["api.example", "API.example:8443", "eu.atlas.example", "a.b.atlas.example"]
)
async def test_listed_hosts_are_served(client_with: ClientFactory, host: str) -> None:
    async with client_with(ALLOWED_HOSTS=HOSTS) as client:
        response = await client.get("/api/v1/users/me", headers={"Host": host})
    assert response.status_code == 401


@pytest.mark.parametrize("host", ["evil.example", "atlas.example", "api.example.evil", "10.0.0.7"])
async def test_other_hosts_get_a_400_problem(client_with: ClientFactory, host: str) -> None:
    async with client_with(ALLOWED_HOSTS=HOSTS) as client:
        response = await client.get("/api/v1/users/me", headers={"Host": host})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith(":host-not-allowed")
    assert host not in response.text


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/ready", "/metrics"])
async def test_probes_and_metrics_answer_by_pod_ip(client_with: ClientFactory, path: str) -> None:
    async with client_with(ALLOWED_HOSTS=HOSTS) as client:
        response = await client.get(path, headers={"Host": "10.0.0.7:8000"})
    assert response.status_code == 200


def test_a_malformed_wildcard_is_refused() -> None:
    from app.core.middleware import AllowedHostsMiddleware

    async def app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
        return None

    with pytest.raises(ValueError, match="ALLOWED_HOSTS"):
        AllowedHostsMiddleware(app, allowed_hosts=["api.*.example"], exempt_paths=())
