"""Departments through HTTP: the tree, codes, managers, ETags, deletion rules and audit."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.process.models import Process, process_departments
from app.domains.resource.models import Resource, ResourceKind
from app.domains.user.models import User
from tests.factories import Factory
from tests.statements import count_statements

URL = "/api/v1/departments"
_names = itertools.count(1)


@pytest.fixture
async def writer(factory: Factory) -> User:
    return await factory.user(permissions=["departments:read", "departments:write"])


@pytest.fixture
async def headers(factory: Factory, writer: User) -> dict[str, str]:
    return factory.headers(writer)


async def _create(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"Department {next(_names)}")
    response = await client.post(URL, headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _patch(
    client: AsyncClient, headers: dict[str, str], department_id: int, **body: Any
) -> Any:
    return await client.patch(f"{URL}/{department_id}", headers=headers, json=body)


def _ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


# --- who may call -----------------------------------------------------------------


async def test_listing_without_a_token_answers_401(client: AsyncClient) -> None:
    assert (await client.get(URL)).status_code == 401
    assert (await client.post(URL, json={"name": "Finance"})).status_code == 401


async def test_reading_without_the_permission_answers_403(
    client: AsyncClient, factory: Factory
) -> None:
    outsider = await factory.user(permissions=["processes:read"])
    assert (await client.get(URL, headers=factory.headers(outsider))).status_code == 403


async def test_writing_without_the_permission_answers_403(
    client: AsyncClient, factory: Factory
) -> None:
    reader = await factory.user(permissions=["departments:read"])
    department = await factory.department()
    reader_headers = factory.headers(reader)
    assert (await client.post(URL, headers=reader_headers, json={"name": "x"})).status_code == 403
    assert (await _patch(client, reader_headers, department.id, name="y")).status_code == 403
    response = await client.delete(f"{URL}/{department.id}", headers=reader_headers)
    assert response.status_code == 403
    assert (await client.get(URL, headers=reader_headers)).status_code == 200


# --- create and read ----------------------------------------------------------------


async def test_create_answers_201_with_location_and_etag(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    manager = await factory.user(full_name="Mona Manager")
    response = await client.post(
        URL,
        headers=headers,
        json={
            "name": "  Finance ",
            "code": "FIN",
            "description": "Money in, money out.",
            "manager_id": manager.id,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{URL}/{body['id']}"
    assert response.headers["etag"] == 'W/"1"'
    assert body["name"] == "Finance"
    assert body["code"] == "FIN"
    assert body["description"] == "Money in, money out."
    assert body["parent_id"] is None
    assert body["manager"] == {"id": manager.id, "full_name": "Mona Manager"}
    assert body["created_by_id"] == writer.id
    assert body["version"] == 1
    assert body["created_at"] == body["updated_at"]


async def test_read_answers_the_department_with_its_etag(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, code="OPS")
    response = await client.get(f"{URL}/{created['id']}", headers=headers)
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'
    assert response.json() == created


async def test_unknown_department_answers_404(client: AsyncClient, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", f"{URL}/999999"),
        ("GET", f"{URL}/999999/tree"),
        ("PATCH", f"{URL}/999999"),
        ("DELETE", f"{URL}/999999"),
    ]:
        response = await client.request(method, path, headers=headers, json={})
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == "Department 999999 does not exist."


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x" * 201},
        {"name": "Finance", "code": "C" * 33},
        {"name": "Finance", "description": "d" * 5001},
        {"name": "Finance", "parent_id": 0},
        {"name": "Finance", "colour": "blue"},
    ],
)
async def test_invalid_bodies_answer_422(
    client: AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(URL, headers=headers, json=body)
    assert response.status_code == 422


async def test_unknown_parent_answers_422(client: AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(URL, headers=headers, json={"name": "Lost", "parent_id": 424242})
    assert response.status_code == 422
    assert "424242" in response.json()["detail"]


async def test_unknown_manager_answers_422(client: AsyncClient, headers: dict[str, str]) -> None:
    response = await client.post(URL, headers=headers, json={"name": "HR", "manager_id": 424242})
    assert response.status_code == 422
    assert "manager_id" in response.json()["detail"]


# --- uniqueness ---------------------------------------------------------------------


async def test_duplicate_code_answers_409(client: AsyncClient, headers: dict[str, str]) -> None:
    await _create(client, headers, code="ENG")
    response = await client.post(URL, headers=headers, json={"name": "Other", "code": "ENG"})
    assert response.status_code == 409
    assert response.json()["detail"] == "A department with code 'ENG' already exists."


async def test_patching_to_a_taken_code_answers_409(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    await _create(client, headers, code="ENG")
    other = await _create(client, headers, code="OPS")
    assert (await _patch(client, headers, other["id"], code="ENG")).status_code == 409
    # Keeping one's own code is no clash.
    assert (await _patch(client, headers, other["id"], code="OPS")).status_code == 200


async def test_sibling_names_clash_ignoring_case(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    parent = await _create(client, headers)
    await _create(client, headers, name="Payroll", parent_id=parent["id"])
    response = await client.post(
        URL, headers=headers, json={"name": "PAYROLL", "parent_id": parent["id"]}
    )
    assert response.status_code == 409
    assert "'PAYROLL'" in response.json()["detail"]
    # The same name elsewhere in the tree is fine; two roots are siblings too.
    await _create(client, headers, name="Payroll")
    response = await client.post(URL, headers=headers, json={"name": "payroll"})
    assert response.status_code == 409


async def test_moving_next_to_a_namesake_answers_409(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    left = await _create(client, headers)
    right = await _create(client, headers)
    await _create(client, headers, name="Audit", parent_id=left["id"])
    moving = await _create(client, headers, name="audit", parent_id=right["id"])
    assert (await _patch(client, headers, moving["id"], parent_id=left["id"])).status_code == 409


async def test_concurrent_creates_with_one_code_give_one_201_and_409s(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(URL, headers=headers, json={"name": f"Racer {n}", "code": "RACE"})
            for n in range(8)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 7
    for response in responses:
        if response.status_code == 409:
            assert response.json()["detail"] == "A department with code 'RACE' already exists."


# --- update and versions ------------------------------------------------------------


async def test_patch_changes_only_the_fields_sent(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    manager = await factory.user(full_name="Max Manager")
    created = await _create(client, headers, code="LEG", description="Contracts")
    response = await _patch(client, headers, created["id"], name="Legal", manager_id=manager.id)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Legal"
    assert body["code"] == "LEG"
    assert body["description"] == "Contracts"
    assert body["manager"] == {"id": manager.id, "full_name": "Max Manager"}
    assert body["version"] == 2
    assert response.headers["etag"] == 'W/"2"'
    assert body["updated_at"] > created["updated_at"]

    cleared = await _patch(client, headers, created["id"], code=None, manager_id=None)
    assert cleared.json()["code"] is None
    assert cleared.json()["manager"] is None


async def test_patch_that_changes_nothing_keeps_the_version(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, name="Same")
    response = await _patch(client, headers, created["id"], name="Same")
    assert response.status_code == 200
    assert response.json()["version"] == 1


async def test_patch_with_null_name_answers_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    response = await _patch(client, headers, created["id"], name=None)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "name"]


async def test_patch_with_stale_etag_answers_412(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    fresh = await client.patch(
        path, headers={**headers, "If-Match": 'W/"1"'}, json={"description": "first"}
    )
    assert fresh.status_code == 200
    assert fresh.headers["etag"] == 'W/"2"'
    stale = await client.patch(
        path, headers={**headers, "If-Match": 'W/"1"'}, json={"description": "second"}
    )
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"2"'
    assert (await client.get(path, headers=headers)).json()["description"] == "first"


async def test_patch_without_if_match_last_write_wins(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    await client.patch(path, headers=headers, json={"description": "first"})
    response = await client.patch(path, headers=headers, json={"description": "second"})
    assert response.status_code == 200
    assert response.json()["description"] == "second"
    assert response.json()["version"] == 3


# --- hierarchy ----------------------------------------------------------------------


async def test_a_department_cannot_be_its_own_parent(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    response = await _patch(client, headers, created["id"], parent_id=created["id"])
    assert response.status_code == 422


async def test_moving_under_a_descendant_answers_422(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    root = await _create(client, headers)
    child = await _create(client, headers, parent_id=root["id"])
    grandchild = await _create(client, headers, parent_id=child["id"])
    response = await _patch(client, headers, root["id"], parent_id=grandchild["id"])
    assert response.status_code == 422
    assert "cycle" in response.json()["detail"]


async def test_moving_to_the_top_level_and_back(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    root = await _create(client, headers)
    child = await _create(client, headers, parent_id=root["id"])
    assert (await _patch(client, headers, child["id"], parent_id=None)).json()["parent_id"] is None
    moved = await _patch(client, headers, child["id"], parent_id=root["id"])
    assert moved.json()["parent_id"] == root["id"]


async def test_concurrent_moves_never_close_a_loop(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    # a > d and c > b: "a under b" and "c under d" are each fine alone, a loop together.
    for _ in range(5):
        a = await _create(client, headers)
        d = await _create(client, headers, parent_id=a["id"])
        c = await _create(client, headers)
        b = await _create(client, headers, parent_id=c["id"])
        responses = await asyncio.gather(
            _patch(client, headers, a["id"], parent_id=b["id"]),
            _patch(client, headers, c["id"], parent_id=d["id"]),
        )
        assert sorted(response.status_code for response in responses) == [200, 422]


async def test_tree_nests_every_descendant(client: AsyncClient, headers: dict[str, str]) -> None:
    root = await _create(client, headers, name="Company", code="CO")
    sales = await _create(client, headers, name="Sales", parent_id=root["id"])
    support = await _create(client, headers, name="Support", parent_id=root["id"])
    emea = await _create(client, headers, name="EMEA", parent_id=sales["id"])
    await _create(client, headers, name="Elsewhere")

    response = await client.get(f"{URL}/{root['id']}/tree", headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "id": root["id"],
        "name": "Company",
        "code": "CO",
        "parent_id": None,
        "manager_id": None,
        "children": [
            {
                "id": sales["id"],
                "name": "Sales",
                "code": None,
                "parent_id": root["id"],
                "manager_id": None,
                "children": [
                    {
                        "id": emea["id"],
                        "name": "EMEA",
                        "code": None,
                        "parent_id": sales["id"],
                        "manager_id": None,
                        "children": [],
                    }
                ],
            },
            {
                "id": support["id"],
                "name": "Support",
                "code": None,
                "parent_id": root["id"],
                "manager_id": None,
                "children": [],
            },
        ],
    }
    subtree = (await client.get(f"{URL}/{sales['id']}/tree", headers=headers)).json()
    assert [child["id"] for child in subtree["children"]] == [emea["id"]]


async def test_tree_is_one_query(client: AsyncClient, headers: dict[str, str]) -> None:
    root = await _create(client, headers)
    for _ in range(3):
        child = await _create(client, headers, parent_id=root["id"])
        await _create(client, headers, parent_id=child["id"])
    assert (await client.get(f"{URL}/{root['id']}/tree", headers=headers)).status_code == 200
    with count_statements() as statements:
        response = await client.get(f"{URL}/{root['id']}/tree", headers=headers)
    assert len(response.json()["children"]) == 3
    assert len([s for s in statements if "subtree" in s]) == 1
    assert len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]) == 1


# --- delete -------------------------------------------------------------------------


async def test_delete_answers_204_then_404(client: AsyncClient, headers: dict[str, str]) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    assert (await client.delete(path, headers=headers)).status_code == 204
    assert (await client.get(path, headers=headers)).status_code == 404


async def test_delete_with_stale_etag_answers_412(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    path = f"{URL}/{created['id']}"
    await _patch(client, headers, created["id"], description="changed")
    response = await client.delete(path, headers={**headers, "If-Match": 'W/"1"'})
    assert response.status_code == 412
    response = await client.delete(path, headers={**headers, "If-Match": 'W/"2"'})
    assert response.status_code == 204


async def test_delete_with_children_answers_409_naming_them(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    parent = await _create(client, headers)
    await _create(client, headers, parent_id=parent["id"])
    await _create(client, headers, parent_id=parent["id"])
    response = await client.delete(f"{URL}/{parent['id']}", headers=headers)
    assert response.status_code == 409
    body = response.json()
    assert "2 child departments" in body["detail"]
    assert body["blocked_by"] == {"child departments": 2}


async def test_delete_with_users_or_resources_answers_409_naming_them(
    client: AsyncClient, factory: Factory, session: AsyncSession, headers: dict[str, str]
) -> None:
    department = await factory.department()
    member = await factory.user()
    member.department_id = department.id
    session.add(Resource(name="Laptop", kind=ResourceKind.EQUIPMENT, department_id=department.id))
    await session.commit()
    response = await client.delete(f"{URL}/{department.id}", headers=headers)
    assert response.status_code == 409
    assert response.json()["blocked_by"] == {"users": 1, "resources": 1}
    assert "1 users" in response.json()["detail"]
    assert "1 resources" in response.json()["detail"]


async def test_delete_takes_the_process_links_with_it(
    client: AsyncClient, factory: Factory, session: AsyncSession, headers: dict[str, str]
) -> None:
    department = await factory.department()
    process = Process(title="Payroll run")
    session.add(process)
    await session.flush()
    await session.execute(
        insert(process_departments).values(process_id=process.id, department_id=department.id)
    )
    await session.commit()
    assert (await client.delete(f"{URL}/{department.id}", headers=headers)).status_code == 204
    links = await session.scalar(select(func.count()).select_from(process_departments))
    assert links == 0
    assert await session.scalar(select(func.count()).select_from(Process)) == 1


# --- lists --------------------------------------------------------------------------


async def test_list_filters(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    manager = await factory.user()
    root = await _create(client, headers, name="Operations", code="OPS")
    child = await _create(
        client, headers, name="Logistics", parent_id=root["id"], manager_id=manager.id
    )
    other = await _create(client, headers, name="Research", code="R_D")
    by_someone_else = await factory.department(name="Imported")

    async def ids(**params: Any) -> list[int]:
        response = await client.get(URL, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return _ids(response.json())

    assert await ids(q="logi") == [child["id"]]
    assert await ids(q="ops") == [root["id"]]  # the code matches too
    assert await ids(q="r_") == [other["id"]]  # `_` is a character, not a wildcard
    assert await ids(parent_id=root["id"]) == [child["id"]]
    assert await ids(root="true") == [root["id"], other["id"], by_someone_else.id]
    assert await ids(root="false") == [child["id"]]
    assert await ids(manager_id=manager.id) == [child["id"]]
    assert await ids(created_by_id=writer.id) == [root["id"], child["id"], other["id"]]


@pytest.mark.parametrize(
    "params",
    [{"sort": "colour"}, {"sort": "code"}, {"parent_id": "x"}, {"root": "maybe"}, {"limit": 0}],
)
async def test_invalid_list_parameters_answer_422(
    client: AsyncClient, headers: dict[str, str], params: dict[str, Any]
) -> None:
    assert (await client.get(URL, headers=headers, params=params)).status_code == 422


async def test_list_sorts_by_whitelisted_fields(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for name in ["Beta", "Alpha", "Gamma"]:
        await _create(client, headers, name=name)
    response = await client.get(URL, headers=headers, params={"sort": "-name"})
    assert [item["name"] for item in response.json()["items"]] == ["Gamma", "Beta", "Alpha"]
    response = await client.get(URL, headers=headers, params={"sort": "-created_at"})
    assert [item["name"] for item in response.json()["items"]] == ["Gamma", "Alpha", "Beta"]


async def test_cursor_walk_returns_every_department_once(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = [(await _create(client, headers, name=f"D{n % 3}-{n}"))["id"] for n in range(8)]
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3, "sort": "name", "include_total": "true"}
    while True:
        page = (await client.get(URL, headers=headers, params=params)).json()
        assert page["total"] == 8
        seen.extend(_ids(page))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))


async def test_a_page_with_managers_costs_the_same_queries_whatever_its_size(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    async def statements_for_page() -> int:
        assert (await client.get(URL, headers=headers)).status_code == 200
        with count_statements() as statements:
            response = await client.get(URL, headers=headers)
        assert all(item["manager"] is not None for item in response.json()["items"])
        return len(statements)

    for _ in range(2):
        await _create(client, headers, manager_id=(await factory.user()).id)
    small = await statements_for_page()
    for _ in range(6):
        await _create(client, headers, manager_id=(await factory.user()).id)
    assert await statements_for_page() == small == 2


# --- audit --------------------------------------------------------------------------


async def test_every_write_is_audited(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    created = await _create(client, headers, name="Finance", code="FIN")
    await _patch(client, headers, created["id"], name="Finance & Tax")
    await client.delete(f"{URL}/{created['id']}", headers=headers)

    auditor = factory.headers(await factory.user(superuser=True))
    response = await client.get(
        "/api/v1/audit-events",
        headers=auditor,
        params={"entity_type": "department", "entity_id": created["id"]},
    )
    events = response.json()["items"]
    assert [event["action"] for event in events] == ["create", "update", "delete"]
    assert all(event["actor_id"] == writer.id for event in events)
    assert events[0]["changes"]["name"] == [None, "Finance"]
    assert events[0]["changes"]["code"] == [None, "FIN"]
    assert events[1]["changes"] == {"name": ["Finance", "Finance & Tax"]}
    assert events[2]["changes"]["name"] == ["Finance & Tax", None]


async def test_a_refused_write_leaves_no_audit_event(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    await _create(client, headers, code="DUP")
    await client.post(URL, headers=headers, json={"name": "Twin", "code": "DUP"})
    auditor = factory.headers(await factory.user(superuser=True))
    response = await client.get(
        "/api/v1/audit-events", headers=auditor, params={"entity_type": "department"}
    )
    assert len(response.json()["items"]) == 1
