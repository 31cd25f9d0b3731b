"""GETs run in autocommit: no BEGIN or COMMIT round trips; writes keep their transaction."""

from __future__ import annotations

from httpx import AsyncClient

from tests.factories import Factory
from tests.statements import count_statements, count_transaction_commands

URL = "/api/v1/processes"


async def test_reads_send_no_begin_or_commit_and_writes_one_of_each(
    client: AsyncClient, factory: Factory
) -> None:
    writer = await factory.user(permissions=["processes:read", "processes:write"])
    headers = factory.headers(writer)
    department = await factory.department()
    created = await client.post(
        URL, headers=headers, json={"title": "Onboarding", "department_ids": [department.id]}
    )
    assert created.status_code == 201, created.text
    process = created.json()

    with count_transaction_commands() as commands, count_statements() as statements:
        read = await client.get(f"{URL}/{process['id']}", headers=headers)
        page = await client.get(URL, headers=headers, params={"limit": 100})
    assert (read.status_code, page.status_code) == (200, 200)
    assert read.json() == process
    assert commands == []
    assert statements  # the reads did reach PostgreSQL

    with count_transaction_commands() as commands:
        updated = await client.patch(
            f"{URL}/{process['id']}", headers=headers, json={"title": "Onboarding v2"}
        )
    assert updated.status_code == 200, updated.text
    assert commands == ["BEGIN", "COMMIT"]

    with count_transaction_commands() as commands:
        refused = await client.patch(
            f"{URL}/{process['id']}", headers=headers, json={"department_ids": [10**9]}
        )
    assert refused.status_code == 422
    assert commands == ["BEGIN", "ROLLBACK"]
    again = await client.get(f"{URL}/{process['id']}", headers=headers)
    assert again.json()["title"] == "Onboarding v2"
    assert [item["id"] for item in again.json()["departments"]] == [department.id]
