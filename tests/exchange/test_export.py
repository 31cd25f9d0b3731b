"""Exports through HTTP: the whole filtered set, in CSV or NDJSON, links and natural keys named."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domains.exchange import queries as exchange_queries
from app.domains.exchange.collections import PROCESSES
from app.domains.exchange.schemas import ExportFormat
from app.domains.process.models import Process, ProcessStatus, process_departments
from app.domains.process.schemas import ProcessFilters
from app.domains.user.models import User
from tests.exchange.helpers import API, NDJSON, csv_rows, export, ndjson_rows, rows_of
from tests.factories import Factory
from tests.statements import count_statements


@pytest.fixture
async def admin(factory: Factory) -> User:
    return await factory.user(superuser=True, email="admin@example.com", full_name="Ada Admin")


@pytest.fixture
async def headers(factory: Factory, admin: User) -> dict[str, str]:
    return factory.headers(admin)


async def _processes(session: AsyncSession, count: int, **values: Any) -> list[int]:
    rows = [{"title": f"Process {n:04d}", **values} for n in range(count)]
    result = await session.execute(insert(Process).returning(Process.id), rows)
    ids = list(result.scalars())
    await session.commit()
    return ids


async def test_the_whole_filtered_set_is_exported_not_a_page(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    active = await _processes(session, 230, status=ProcessStatus.ACTIVE)
    await _processes(session, 20, status=ProcessStatus.RETIRED)

    for file_format in ExportFormat:
        response = await export(
            client, headers, "processes", status="active", format=file_format.value
        )
        assert [int(row["id"]) for row in rows_of(response)] == active


async def test_an_export_walks_the_rows_in_batches_of_flat_cost(
    client: AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exchange_queries, "BATCH_ROWS", 10)
    ids = await _processes(session, 35)

    with count_statements() as statements:
        response = await export(client, headers, "processes")

    assert [int(row["id"]) for row in csv_rows(response.text)] == ids
    batches = [sql for sql in statements if "WITH batch AS" in sql]
    # 10 + 10 + 10 + 5: one statement per batch, rows and links together, never one per row.
    assert len(batches) == 4
    assert all("process_departments" in sql and "process_roles" in sql for sql in batches)


async def test_the_file_is_named_and_typed_by_its_format(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    csv_file = await export(client, headers, "roles")
    ndjson_file = await export(client, headers, "roles", format="ndjson")

    assert csv_file.headers["content-type"] == "text/csv; charset=utf-8"
    assert ndjson_file.headers["content-type"] == NDJSON
    for response, extension in ((csv_file, "csv"), (ndjson_file, "ndjson")):
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="roles-')
        assert disposition.endswith(f'.{extension}"')
        assert len(disposition.split('"')[1]) == len(f"roles-20261130.{extension}")


async def test_processes_carry_their_links_as_ids_and_names(
    client: AsyncClient, factory: Factory, headers: dict[str, str], admin: User
) -> None:
    ops = await factory.department(name="Operations")
    finance = await factory.department(name="Finance")
    auditor = await factory.role(name="Auditor")
    response = await client.post(
        f"{API}/processes",
        headers=headers,
        json={
            "title": "Close the books",
            "owner_id": admin.id,
            "department_ids": [finance.id, ops.id],
            "role_ids": [auditor.id],
        },
    )
    assert response.status_code == 201

    (row,) = csv_rows((await export(client, headers, "processes")).text)
    ordered = sorted([(ops.id, "Operations"), (finance.id, "Finance")])
    assert row["department_ids"] == ";".join(str(i) for i, _ in ordered)
    assert row["department_names"] == ";".join(name for _, name in ordered)
    assert (row["role_ids"], row["role_names"]) == (str(auditor.id), "Auditor")
    assert (row["location_ids"], row["location_names"]) == ("", "")
    assert (row["owner_id"], row["owner_email"]) == (str(admin.id), "admin@example.com")

    (document,) = ndjson_rows((await export(client, headers, "processes", format="ndjson")).text)
    assert document["departments"] == [{"id": i, "name": name} for i, name in ordered]
    assert document["roles"] == [{"id": auditor.id, "name": "Auditor"}]
    assert document["locations"] == []
    assert document["resources"] == []
    assert document["owner_email"] == "admin@example.com"
    assert document["title"] == "Close the books"


async def test_references_are_named_by_natural_key_next_to_their_ids(
    client: AsyncClient, factory: Factory, headers: dict[str, str], admin: User
) -> None:
    parent = await client.post(
        f"{API}/departments", headers=headers, json={"name": "Ops", "code": "OPS"}
    )
    child = await client.post(
        f"{API}/departments",
        headers=headers,
        json={"name": "Fleet", "parent_id": parent.json()["id"], "manager_id": admin.id},
    )
    assert child.status_code == 201

    rows = {
        row["name"]: row for row in csv_rows((await export(client, headers, "departments")).text)
    }
    assert rows["Fleet"]["parent_id"] == str(parent.json()["id"])
    assert rows["Fleet"]["parent_code"] == "OPS"
    assert rows["Fleet"]["manager_email"] == "admin@example.com"
    assert rows["Ops"]["parent_code"] == ""
    assert rows["Ops"]["code"] == "OPS"


async def test_users_are_exported_without_secrets(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    role = await factory.role(name="Clerk")
    await factory.user(roles=[role], email="clerk@example.com")

    csv_file = await export(client, headers, "users")
    ndjson_file = await export(client, headers, "users", format="ndjson")

    header = csv_file.text.splitlines()[0].split(",")
    assert "password_hash" not in header
    assert "email" in header
    for response in (csv_file, ndjson_file):
        assert "argon2" not in response.text
        assert "password" not in response.text
    clerk = next(
        row for row in ndjson_rows(ndjson_file.text) if row["email"] == "clerk@example.com"
    )
    assert clerk["roles"] == [{"id": role.id, "name": "Clerk"}]


EXPORT_FILTERS: dict[str, tuple[dict[str, Any], str, str]] = {
    # collection: (the list's filter, a field, the value every exported row has)
    "departments": ({"root": "true"}, "parent_id", ""),
    "locations": ({"kind": "building"}, "kind", "building"),
    "resources": ({"q": "laptop"}, "name", "Laptop"),
    "processes": ({"criticality": "critical"}, "criticality", "critical"),
    "roles": ({"permission": "audit:read"}, "name", "Auditor"),
    "users": ({"is_active": "false"}, "is_active", "false"),
}


@pytest.mark.parametrize("file_format", list(ExportFormat))
@pytest.mark.parametrize("collection", sorted(EXPORT_FILTERS))
async def test_each_collection_exports_what_its_list_filters_select(
    client: AsyncClient,
    factory: Factory,
    headers: dict[str, str],
    collection: str,
    file_format: ExportFormat,
) -> None:
    root = await factory.department()
    await factory.department(parent=root)
    site = await factory.location()
    await factory.location(parent=site)
    await factory.resource(name="Laptop")
    await factory.resource(name="Forklift")
    await factory.role(name="Auditor", permissions=["audit:read"])
    await factory.role(name="Clerk", permissions=["processes:read"])
    await factory.user(active=False)
    for criticality in ("critical", "low"):
        created = await client.post(
            f"{API}/processes", headers=headers, json={"title": "P", "criticality": criticality}
        )
        assert created.status_code == 201
    filters, name, value = EXPORT_FILTERS[collection]

    listed = await client.get(f"{API}/{collection}", headers=headers, params=filters)
    exported = await export(client, headers, collection, format=file_format.value, **filters)

    rows = rows_of(exported)
    assert [int(row["id"]) for row in rows] == [item["id"] for item in listed.json()["items"]]
    assert rows
    expected: Any = value
    if file_format is ExportFormat.NDJSON:
        expected = {"": None, "false": False}.get(value, value)
    assert {row[name] for row in rows} == {expected}


async def test_an_invalid_filter_or_format_answers_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for params in ({"status": "finished"}, {"format": "xlsx"}, {"created_after": "yesterday"}):
        response = await client.get(f"{API}/processes/export", headers=headers, params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


async def test_export_does_not_take_the_place_of_get_by_id(
    client: AsyncClient, headers: dict[str, str], session: AsyncSession
) -> None:
    (process_id,) = await _processes(session, 1)
    by_id = await client.get(f"{API}/processes/{process_id}", headers=headers)
    assert by_id.status_code == 200
    assert by_id.json()["id"] == process_id
    assert (await client.get(f"{API}/processes/exports", headers=headers)).status_code == 422


async def test_an_export_reads_one_snapshot_however_long_it_streams(
    engine: AsyncEngine,
    session: AsyncSession,
    factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exchange_queries, "BATCH_ROWS", 2)
    first_ids = await _processes(session, 3)
    department = await factory.department()
    await session.execute(
        insert(process_departments), [{"process_id": first_ids[-1], "department_id": department.id}]
    )
    await session.commit()
    chunks = exchange_queries.export_file(
        engine, collection=PROCESSES, filters=ProcessFilters(), file_format=ExportFormat.NDJSON
    )

    first = await anext(chunks)  # the snapshot is taken; two rows are read
    await _processes(session, 2)  # committed while the export streams
    await session.execute(
        process_departments.delete().where(process_departments.c.process_id == first_ids[-1])
    )
    await session.commit()
    rest = b"".join([chunk async for chunk in chunks])

    documents = ndjson_rows((first + rest).decode())
    assert [document["id"] for document in documents] == first_ids
    assert documents[-1]["departments"] == [{"id": department.id, "name": department.name}]


async def test_a_worker_streams_a_bounded_number_of_exports_at_once(
    client: AsyncClient, engine: AsyncEngine, session: AsyncSession, headers: dict[str, str]
) -> None:
    """Each export holds a connection while it streams: slow readers cannot take the pool."""
    await _processes(session, 3)
    limit = 4  # EXPORT_MAX_CONCURRENT's default, which the test app keeps
    streaming = [
        exchange_queries.export_file(
            engine, collection=PROCESSES, filters=ProcessFilters(), file_format=ExportFormat.CSV
        )
        for _ in range(limit)
    ]
    try:
        for stream in streaming:
            await anext(stream)  # started: its connection is held
        refused = await client.get(f"{API}/processes/export", headers=headers)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "4 exports are already streaming" in refused.json()["detail"]
        assert (await client.get(f"{API}/processes?limit=1", headers=headers)).status_code == 200
        await streaming.pop().aclose()
        served = await client.get(f"{API}/processes/export", headers=headers)
        assert served.status_code == 200
        assert len(csv_rows(served.text)) == 3
    finally:
        for stream in streaming:
            await stream.aclose()


async def open_transactions(session: AsyncSession) -> int:
    """Other sessions of this database inside a transaction that runs nothing now."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
    )
    count = (await session.execute(query)).scalar_one()
    await session.commit()
    return int(count)


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_a_download_that_stops_midway_gives_its_connection_back_at_once(
    app: FastAPI,
    client: AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    spec_version: str,
) -> None:
    """The client goes away after the first chunk: the snapshot ends with the request.

    Starlette would leave the stream suspended, its REPEATABLE READ transaction open on a
    pooled connection, until the garbage collector got to it.
    """
    monkeypatch.setattr(exchange_queries, "BATCH_ROWS", 2)
    await _processes(session, 5)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"{API}/processes/export",
        "raw_path": f"{API}/processes/export".encode(),
        "query_string": b"format=ndjson",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if requested:  # a server's receive waits for the disconnect
            await asyncio.Event().wait()
        requested = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and any(
            m["type"] == "http.response.body" for m in sent
        ):
            raise OSError("the client went away")
        sent.append(message)

    with pytest.raises(Exception):  # noqa: B017, PT011 (whichever Starlette makes of it)
        await app(scope, receive, send)

    assert sent[0]["status"] == 200
    assert await open_transactions(session) == 0
    again = await client.get(f"{API}/processes/export", headers=headers)
    assert again.status_code == 200
    assert len(rows_of(again)) == 5
