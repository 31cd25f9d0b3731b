"""/resources: permissions, CRUD, validation, ETags and If-Match, links and the audit trail."""

from __future__ import annotations

import asyncio

import pytest
from httpx import AsyncClient
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.process.models import Process, process_resources
from tests.factories import Factory
from tests.resource.helpers import URL, create, make_department, make_location

READ = ["resources:read"]
WRITE = ["resources:read", "resources:write"]


async def test_every_route_answers_401_without_a_token(client: AsyncClient) -> None:
    answers = [
        await client.get(URL),
        await client.post(URL, json={"name": "Forklift", "kind": "equipment"}),
        await client.get(f"{URL}/1"),
        await client.patch(f"{URL}/1", json={"name": "Crane"}),
        await client.delete(f"{URL}/1"),
    ]
    assert [response.status_code for response in answers] == [401] * 5


async def test_reading_needs_resources_read(client: AsyncClient, factory: Factory) -> None:
    outsider = factory.headers(await factory.user(permissions=["processes:read"]))
    assert (await client.get(URL, headers=outsider)).status_code == 403
    assert (await client.get(f"{URL}/1", headers=outsider)).status_code == 403


async def test_writing_needs_resources_write(client: AsyncClient, factory: Factory) -> None:
    writer = factory.headers(await factory.user(permissions=WRITE))
    reader = factory.headers(await factory.user(permissions=READ))
    resource = await create(client, writer)
    url = f"{URL}/{resource['id']}"
    answers = [
        await client.post(URL, json={"name": "Crane", "kind": "equipment"}, headers=reader),
        await client.patch(url, json={"name": "Crane"}, headers=reader),
        await client.delete(url, headers=reader),
    ]
    assert [response.status_code for response in answers] == [403] * 3
    assert answers[0].headers["content-type"] == "application/problem+json"


async def test_create_answers_201_with_location_header_and_etag(
    client: AsyncClient, factory: Factory
) -> None:
    writer = await factory.user(permissions=WRITE)
    response = await client.post(
        URL,
        json={"name": "  Forklift  ", "kind": "equipment", "quantity": 3},
        headers=factory.headers(writer),
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/resources/{body['id']}"
    assert response.headers["etag"] == 'W/"1"'
    assert body["name"] == "Forklift"
    assert body["kind"] == "equipment"
    assert body["status"] == "available"
    assert body["quantity"] == 3
    assert body["description"] is None
    assert body["location"] is None
    assert body["department"] is None
    assert body["created_by_id"] == writer.id
    assert body["version"] == 1
    assert body["created_at"] == body["updated_at"]


async def test_create_embeds_location_and_department_summaries(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    site = await make_location(session, name="Lyon campus")
    finance = await make_department(session, name="Finance")
    body = await create(client, headers, location_id=site.id, department_id=finance.id)
    assert body["location"] == {"id": site.id, "name": "Lyon campus"}
    assert body["department"] == {"id": finance.id, "name": "Finance"}
    read = await client.get(f"{URL}/{body['id']}", headers=headers)
    assert read.json() == body


async def test_read_answers_the_resource_with_its_etag(
    client: AsyncClient, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers, description="Counterbalance, 2.5 t")
    response = await client.get(f"{URL}/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.json() == created


async def test_unknown_resource_answers_404(client: AsyncClient, factory: Factory) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    for response in (
        await client.get(f"{URL}/999999", headers=headers),
        await client.patch(f"{URL}/999999", json={"name": "Crane"}, headers=headers),
        await client.delete(f"{URL}/999999", headers=headers),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "Resource 999999 does not exist."


@pytest.mark.parametrize("field", ["location_id", "department_id"])
async def test_unknown_reference_answers_422_naming_the_id(
    client: AsyncClient, factory: Factory, field: str
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    response = await client.post(
        URL, json={"name": "Forklift", "kind": "equipment", field: 424242}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["detail"] == f"Unknown ids in {field}: 424242."
    assert response.json()["errors"][0]["missing"] == [424242]

    created = await create(client, headers)
    patched = await client.patch(f"{URL}/{created['id']}", json={field: 424242}, headers=headers)
    assert patched.status_code == 422
    assert "424242" in patched.json()["detail"]


async def test_negative_quantity_answers_422(client: AsyncClient, factory: Factory) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    response = await client.post(
        URL, json={"name": "Pallets", "kind": "material", "quantity": -1}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "quantity"]
    created = await create(client, headers)
    patched = await client.patch(f"{URL}/{created['id']}", json={"quantity": -5}, headers=headers)
    assert patched.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Forklift", "kind": "spaceship"},
        {"name": "Forklift", "kind": "equipment", "status": "lost"},
        {"name": "", "kind": "equipment"},
        {"name": "x" * 201, "kind": "equipment"},
        {"name": "Forklift", "kind": "equipment", "description": "x" * 5001},
        {"name": "Forklift", "kind": "equipment", "colour": "yellow"},
        {"name": "Forklift", "kind": "equipment", "location_id": 0},
        {"kind": "equipment"},
    ],
    ids=[
        "unknown-kind",
        "unknown-status",
        "empty-name",
        "long-name",
        "long-description",
        "unknown-field",
        "zero-id",
        "missing-name",
    ],
)
async def test_invalid_create_body_answers_422(
    client: AsyncClient, factory: Factory, body: dict[str, object]
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    response = await client.post(URL, json=body, headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_patch_changes_only_the_fields_sent(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    site = await make_location(session)
    created = await create(client, headers, description="Yellow", quantity=2)
    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"status": "maintenance", "location_id": site.id},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    body = response.json()
    assert body["status"] == "maintenance"
    assert body["location"] == {"id": site.id, "name": site.name}
    assert body["version"] == 2
    assert (body["name"], body["description"], body["quantity"]) == ("Forklift", "Yellow", 2)
    assert body["updated_at"] >= created["updated_at"]


async def test_patch_with_null_unlinks_optional_references(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    site = await make_location(session)
    owner = await make_department(session)
    created = await create(client, headers, location_id=site.id, department_id=owner.id)
    response = await client.patch(
        f"{URL}/{created['id']}",
        json={"location_id": None, "description": None},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json()["location"] is None
    assert response.json()["department"] == {"id": owner.id, "name": owner.name}


@pytest.mark.parametrize("field", ["name", "kind", "status", "quantity"])
async def test_patch_with_null_on_a_required_field_answers_422(
    client: AsyncClient, factory: Factory, field: str
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    response = await client.patch(f"{URL}/{created['id']}", json={field: None}, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", field]


async def test_patch_that_changes_nothing_keeps_the_version(
    client: AsyncClient, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    response = await client.patch(
        f"{URL}/{created['id']}", json={"name": "Forklift"}, headers=headers
    )
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'


async def test_patch_with_stale_etag_answers_412(client: AsyncClient, factory: Factory) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    url = f"{URL}/{created['id']}"
    first = await client.patch(url, json={"quantity": 4}, headers={**headers, "If-Match": 'W/"1"'})
    assert first.status_code == 200
    stale = await client.patch(url, json={"quantity": 9}, headers={**headers, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"2"'
    assert stale.headers["content-type"] == "application/problem+json"
    assert (await client.get(url, headers=headers)).json()["quantity"] == 4


async def test_concurrent_patches_with_the_same_etag_let_exactly_one_through(
    client: AsyncClient, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    url = f"{URL}/{created['id']}"
    answers = await asyncio.gather(
        *(
            client.patch(url, json={"quantity": n}, headers={**headers, "If-Match": 'W/"1"'})
            for n in range(10, 20)
        )
    )
    statuses = sorted(response.status_code for response in answers)
    assert statuses == [200] + [412] * 9
    winner = next(r for r in answers if r.status_code == 200).json()
    current = (await client.get(url, headers=headers)).json()
    assert current["quantity"] == winner["quantity"]
    assert current["version"] == 2


async def test_delete_answers_204_and_the_resource_is_gone(
    client: AsyncClient, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    url = f"{URL}/{created['id']}"
    response = await client.delete(url, headers={**headers, "If-Match": 'W/"1"'})
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(url, headers=headers)).status_code == 404


async def test_delete_with_stale_etag_answers_412(client: AsyncClient, factory: Factory) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    url = f"{URL}/{created['id']}"
    await client.patch(url, json={"quantity": 4}, headers=headers)
    response = await client.delete(url, headers={**headers, "If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert (await client.get(url, headers=headers)).status_code == 200


async def test_deleting_a_resource_removes_its_links_from_processes(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    kept = await create(client, headers, name="Crane")
    deleted = await create(client, headers)
    process_id = await session.scalar(
        insert(Process).values(title="Unload trucks").returning(Process.id)
    )
    await session.execute(
        insert(process_resources),
        [
            {"process_id": process_id, "resource_id": kept["id"]},
            {"process_id": process_id, "resource_id": deleted["id"]},
        ],
    )
    await session.commit()

    assert (await client.delete(f"{URL}/{deleted['id']}", headers=headers)).status_code == 204
    linked = await session.scalars(
        select(process_resources.c.resource_id).where(process_resources.c.process_id == process_id)
    )
    assert list(linked) == [kept["id"]]
    assert await session.scalar(select(func.count()).select_from(Process)) == 1


async def test_every_write_records_an_audit_event(
    client: AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    writer = await factory.user(permissions=WRITE)
    headers = factory.headers(writer)
    site = await make_location(session)
    created = await create(client, headers, quantity=2)
    url = f"{URL}/{created['id']}"
    await client.patch(url, json={"quantity": 5, "location_id": site.id}, headers=headers)
    await client.patch(url, json={"quantity": 5}, headers=headers)  # no change, no event
    await client.delete(url, headers=headers)

    admin = factory.headers(await factory.user(superuser=True))
    response = await client.get(
        "/api/v1/audit-events", params={"entity_type": "resource"}, headers=admin
    )
    assert response.status_code == 200
    events = response.json()["items"]
    assert [event["action"] for event in events] == ["create", "update", "delete"]
    assert {event["entity_id"] for event in events} == {created["id"]}
    assert {event["actor_id"] for event in events} == {writer.id}
    assert events[0]["changes"]["name"] == [None, "Forklift"]
    assert events[0]["changes"]["kind"] == [None, "equipment"]
    assert events[1]["changes"] == {"quantity": [2, 5], "location_id": [None, site.id]}
    assert events[2]["changes"]["quantity"] == [5, None]


async def test_a_refused_write_records_no_audit_event(
    client: AsyncClient, factory: Factory
) -> None:
    headers = factory.headers(await factory.user(permissions=WRITE))
    created = await create(client, headers)
    url = f"{URL}/{created['id']}"
    await client.patch(url, json={"quantity": 3, "location_id": 999}, headers=headers)
    await client.patch(url, json={"quantity": 3}, headers={**headers, "If-Match": 'W/"7"'})

    admin = factory.headers(await factory.user(superuser=True))
    events = (
        await client.get("/api/v1/audit-events", params={"entity_type": "resource"}, headers=admin)
    ).json()["items"]
    assert [event["action"] for event in events] == ["create"]
