"""An import's own limits: rows and bytes, both named by the 413; MAX_BODY_BYTES is not one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from httpx import AsyncClient

from tests.conftest import ClientFactory
from tests.exchange.helpers import API, CSV, send_import
from tests.factories import Factory

FOUR_ROWS = "name\nA\nB\nC\nD\n"


def _names_both_limits(problem: dict[str, object], rows: int, size: int) -> None:
    assert problem["status"] == 413
    assert problem["max_rows"] == rows
    assert problem["max_bytes"] == size
    detail = str(problem["detail"])
    assert f"at most {rows} rows (IMPORT_MAX_ROWS)" in detail
    assert f"{size} bytes (IMPORT_MAX_BYTES)" in detail


async def test_more_rows_than_import_max_rows_answers_413_naming_both_limits(
    client_with: ClientFactory, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(superuser=True))
    async with client_with(IMPORT_MAX_ROWS=3, IMPORT_MAX_BYTES=5000) as client:
        refused = await send_import(client, headers, "roles", FOUR_ROWS)
        dry_run = await send_import(client, headers, "roles", FOUR_ROWS, dry_run=True)
        accepted = await send_import(client, headers, "roles", "name\nA\nB\nC\n")

    assert refused.headers["content-type"] == "application/problem+json"
    _names_both_limits(refused.json(), 3, 5000)
    assert "more than 3 rows" in refused.json()["detail"]
    assert dry_run.status_code == 413
    assert accepted.json()["created"] == 3


async def test_a_body_over_import_max_bytes_answers_413_declared_or_streamed(
    client_with: ClientFactory, factory: Factory
) -> None:
    headers = {**factory.headers(await factory.user(superuser=True)), "Content-Type": CSV}
    body = "name\n" + "".join(f"Role {n}\n" for n in range(40))

    async def chunked() -> AsyncIterator[bytes]:
        for line in body.splitlines(keepends=True):
            yield line.encode()

    async with client_with(IMPORT_MAX_ROWS=100, IMPORT_MAX_BYTES=200) as client:
        declared = await client.post(f"{API}/roles/import", headers=headers, content=body)
        streamed = await client.post(f"{API}/roles/import", headers=headers, content=chunked())
        listed = await client.get(f"{API}/roles", headers=headers)

    for response in (declared, streamed):
        assert response.status_code == 413
        _names_both_limits(response.json(), 100, 200)
    assert f"{len(body)} bytes" in declared.json()["detail"]
    assert listed.json()["items"] == []


async def test_max_body_bytes_limits_other_routes_but_not_imports(
    client_with: ClientFactory, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(superuser=True))
    body = "name,description\n" + "".join(f"Role {n},{'x' * 40}\n" for n in range(10))
    async with client_with(MAX_BODY_BYTES=64) as client:
        imported = await send_import(client, headers, "roles", body)
        created = await client.post(
            f"{API}/roles", headers=headers, json={"name": "R", "description": "x" * 80}
        )

    assert len(body) > 64
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 10
    assert created.status_code == 413


async def test_an_empty_file_imports_nothing(client: AsyncClient, factory: Factory) -> None:
    headers = factory.headers(await factory.user(superuser=True))
    for body in ("", "name\n", "\n\n"):
        response = await send_import(client, headers, "roles", body)
        assert response.status_code == 200
        assert response.json()["rows"] == 0
