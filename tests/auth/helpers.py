from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response

from tests.factories import PASSWORD


async def login(client: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    return await client.post("/api/v1/auth/token", data={"username": email, "password": password})


async def tokens(client: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await login(client, email, password)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
