"""Dependencies between processes through HTTP: the set, its checks, versions, audit, races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.constraints import constraint_error
from app.domains.dependency.exceptions import SelfDependency
from app.domains.dependency.models import ProcessDependency
from app.domains.user.models import User
from tests.factories import Factory
from tests.statements import count_statements

URL = "/api/v1/processes"


@pytest.fixture
async def writer(factory: Factory) -> User:
    return await factory.user(permissions=["processes:read", "processes:write"])


@pytest.fixture
async def headers(factory: Factory, writer: User) -> dict[str, str]:
    return factory.headers(writer)


async def _process(client: AsyncClient, headers: dict[str, str], title: str, **body: Any) -> int:
    response = await client.post(URL, headers=headers, json={"title": title, **body})
    assert response.status_code == 201, response.text
    process_id: int = response.json()["id"]
    return process_id


async def _put(
    client: AsyncClient, headers: dict[str, str], process_id: int, items: list[dict[str, Any]]
) -> Any:
    return await client.put(f"{URL}/{process_id}/dependencies", headers=headers, json=items)


def _needed(body: list[dict[str, Any]]) -> list[tuple[int, str | None, str | None]]:
    return [(item["process"]["id"], item["kind"], item["note"]) for item in body]


# --- who may call -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{URL}/1/dependencies"),
        ("PUT", f"{URL}/1/dependencies"),
        ("GET", f"{URL}/1/dependents"),
        ("GET", f"{URL}/1/graph"),
        ("GET", "/api/v1/impact?location_id=1"),
    ],
)
async def test_every_route_answers_401_without_a_token(
    client: AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path, json=[] if method == "PUT" else None)
    assert response.status_code == 401


async def test_replacing_needs_processes_write_and_reading_processes_read(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    process = await _process(client, headers, "Payroll")
    reader = factory.headers(await factory.user(permissions=["processes:read"]))
    nobody = factory.headers(await factory.user(permissions=["departments:read"]))
    assert (await _put(client, reader, process, [])).status_code == 403
    assert (await client.get(f"{URL}/{process}/dependencies", headers=reader)).status_code == 200
    for path in ("dependencies", "dependents", "graph"):
        response = await client.get(f"{URL}/{process}/{path}", headers=nobody)
        assert response.status_code == 403, path


# --- the set ------------------------------------------------------------------------


async def test_put_replaces_the_whole_set_and_both_ends_show_it(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll", criticality="critical")
    hours = await _process(client, headers, "Record hours", status="active")
    approval = await _process(client, headers, "Approve payroll")
    bank = await _process(client, headers, "Bank transfer")

    response = await _put(
        client,
        headers,
        payroll,
        [
            {"process_id": approval, "kind": "approval"},
            {"process_id": hours, "kind": "input", "note": "  weekly timesheets "},
        ],
    )
    assert response.status_code == 200, response.text
    assert _needed(response.json()) == [
        (hours, "input", "weekly timesheets"),
        (approval, "approval", None),
    ]
    assert response.json()[0]["process"] == {
        "id": hours,
        "title": "Record hours",
        "status": "active",
        "criticality": "medium",
    }
    read = await client.get(f"{URL}/{payroll}/dependencies", headers=headers)
    assert read.json() == response.json()
    dependents = await client.get(f"{URL}/{hours}/dependents", headers=headers)
    assert dependents.status_code == 200
    assert dependents.json() == {
        "items": [
            {
                "process": {
                    "id": payroll,
                    "title": "Payroll",
                    "status": "draft",
                    "criticality": "critical",
                },
                "kind": "input",
                "note": "weekly timesheets",
            }
        ],
        "next_cursor": None,
    }

    # Replace: one removed, one kept with another kind, one added.
    response = await _put(
        client,
        headers,
        payroll,
        [{"process_id": approval, "kind": "service"}, {"process_id": bank}],
    )
    assert _needed(response.json()) == [(approval, "service", None), (bank, None, None)]
    assert (await client.get(f"{URL}/{hours}/dependents", headers=headers)).json()["items"] == []
    assert (await _put(client, headers, payroll, [])).json() == []


async def test_a_change_is_a_new_version_of_the_process_and_if_match_is_honoured(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    hours = await _process(client, headers, "Record hours")
    items = [{"process_id": hours, "kind": "input"}]

    response = await _put(client, {**headers, "If-Match": 'W/"1"'}, payroll, items)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    process = (await client.get(f"{URL}/{payroll}", headers=headers)).json()
    assert process["version"] == 2

    # The same set again changes nothing: no new version.
    response = await _put(client, headers, payroll, items)
    assert response.headers["etag"] == 'W/"2"'

    stale = await _put(client, {**headers, "If-Match": 'W/"1"'}, payroll, [])
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"2"'
    assert _needed((await client.get(f"{URL}/{payroll}/dependencies", headers=headers)).json())


async def test_unknown_ids_answer_422_naming_them_and_write_nothing(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    hours = await _process(client, headers, "Record hours")
    await _put(client, headers, payroll, [{"process_id": hours}])

    response = await _put(
        client,
        headers,
        payroll,
        [{"process_id": 990002}, {"process_id": 990001}, {"process_id": hours, "kind": "input"}],
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "990001" in response.json()["detail"]
    assert "990002" in response.json()["detail"]
    assert response.json()["errors"][0]["missing"] == [990001, 990002]
    after = await client.get(f"{URL}/{payroll}/dependencies", headers=headers)
    assert _needed(after.json()) == [(hours, None, None)]
    assert (await client.get(f"{URL}/{payroll}", headers=headers)).json()["version"] == 2


async def test_a_process_cannot_depend_on_itself_or_twice_on_another(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    hours = await _process(client, headers, "Record hours")
    itself = await _put(client, headers, payroll, [{"process_id": payroll}])
    assert itself.status_code == 422
    assert "itself" in itself.json()["detail"]
    twice = await _put(
        client, headers, payroll, [{"process_id": hours}, {"process_id": hours, "kind": "input"}]
    )
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["repeated"] == [hours]


async def test_the_database_refuses_a_self_dependency_too(
    session: AsyncSession, client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    session.add(ProcessDependency(process_id=payroll, depends_on_id=payroll))
    with pytest.raises(IntegrityError) as raised:
        await session.commit()
    await session.rollback()
    assert isinstance(constraint_error(raised.value), SelfDependency)


@pytest.mark.parametrize(
    "body",
    [
        {"process_id": 1},
        [{"process_id": "2"}],
        [{"process_id": 0}],
        [{"process_id": 2, "kind": "blocking"}],
        [{"process_id": 2, "note": "x" * 2001}],
        [{"process_id": 2, "weight": 3}],
        [{"process_id": i} for i in range(2, 503)],
    ],
)
async def test_invalid_bodies_answer_422(
    client: AsyncClient, headers: dict[str, str], body: Any
) -> None:
    payroll = await _process(client, headers, "Payroll")
    response = await client.put(f"{URL}/{payroll}/dependencies", headers=headers, json=body)
    assert response.status_code == 422


async def test_unknown_processes_answer_404(client: AsyncClient, headers: dict[str, str]) -> None:
    for path in ("dependencies", "dependents", "graph"):
        response = await client.get(f"{URL}/424242/{path}", headers=headers)
        assert response.status_code == 404, path
    assert (await _put(client, headers, 424242, [])).status_code == 404


async def test_deleting_a_process_removes_its_dependencies_both_ways(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    first, middle, last = [await _process(client, headers, t) for t in ("A", "B", "C")]
    await _put(client, headers, middle, [{"process_id": first}])
    await _put(client, headers, last, [{"process_id": middle}])
    assert (await client.delete(f"{URL}/{middle}", headers=headers)).status_code == 204
    assert (await client.get(f"{URL}/{last}/dependencies", headers=headers)).json() == []
    assert (await client.get(f"{URL}/{first}/dependents", headers=headers)).json()["items"] == []


async def test_dependents_are_keyset_paginated(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    shared = await _process(client, headers, "Run the ERP system")
    needing = [await _process(client, headers, f"P{i}") for i in range(7)]
    for process in needing:
        await _put(client, headers, process, [{"process_id": shared, "kind": "service"}])
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(f"{URL}/{shared}/dependents", headers=headers, params=params)
        ).json()
        seen.extend(item["process"]["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(needing)
    total = await client.get(
        f"{URL}/{shared}/dependents", headers=headers, params={"include_total": "true"}
    )
    assert total.json()["total"] == 7


async def test_a_replacement_is_one_statement_whatever_the_set(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    others = [await _process(client, headers, f"P{i}") for i in range(20)]
    await client.get("/api/v1/permissions", headers=headers)  # warm the token cache
    counts = []
    for size in (1, 20):
        with count_statements() as statements:
            response = await _put(
                client, headers, payroll, [{"process_id": i} for i in others[:size]]
            )
        assert response.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]


# --- audit and races ----------------------------------------------------------------


async def test_every_change_is_audited_as_an_update_of_the_process(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    payroll = await _process(client, headers, "Payroll")
    hours = await _process(client, headers, "Record hours")
    approval = await _process(client, headers, "Approve payroll")
    await _put(client, headers, payroll, [{"process_id": hours}, {"process_id": approval}])
    await _put(client, headers, payroll, [{"process_id": approval, "kind": "approval"}])
    await _put(client, headers, payroll, [{"process_id": approval, "kind": "approval"}])
    refused = await _put(client, headers, payroll, [{"process_id": 999999}])
    assert refused.status_code == 422

    auditor = factory.headers(await factory.user(permissions=["audit:read"]))
    events = (
        await client.get(
            "/api/v1/audit-events",
            headers=auditor,
            params={"entity_type": "process", "entity_id": payroll, "action": "update"},
        )
    ).json()["items"]
    changes = sorted((event["changes"]["dependencies"] for event in events), key=str)
    assert changes == sorted(
        [
            {"added": sorted([hours, approval]), "removed": [], "changed": []},
            {"added": [], "removed": [hours], "changed": [approval]},
        ],
        key=str,
    )
    assert {event["actor_id"] for event in events} == {writer.id}


async def test_concurrent_replacements_leave_one_writers_set(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    others = [await _process(client, headers, f"P{i}") for i in range(6)]
    sets = [sorted({others[i % 6], others[(i * 5) % 6]}) for i in range(20)]
    responses = await asyncio.gather(
        *(_put(client, headers, payroll, [{"process_id": i} for i in s]) for s in sets)
    )
    assert [r.status_code for r in responses] == [200] * 20
    final = await client.get(f"{URL}/{payroll}/dependencies", headers=headers)
    assert [item["process"]["id"] for item in final.json()] in sets


async def test_concurrent_if_match_replacements_let_exactly_one_through(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    payroll = await _process(client, headers, "Payroll")
    others = [await _process(client, headers, f"P{i}") for i in range(5)]
    responses = await asyncio.gather(
        *(
            _put(client, {**headers, "If-Match": 'W/"1"'}, payroll, [{"process_id": other}])
            for other in others
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * 4


async def test_two_processes_made_to_need_each_other_at_once_both_succeed(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    # Each write locks its own process and checks the other's key: with FOR UPDATE, the two
    # would wait for each other and PostgreSQL would abort one (503) about half the time.
    for _ in range(5):
        first = await _process(client, headers, "A")
        second = await _process(client, headers, "B")
        responses = await asyncio.gather(
            _put(client, headers, first, [{"process_id": second}]),
            _put(client, headers, second, [{"process_id": first}]),
        )
        assert [r.status_code for r in responses] == [200, 200]
