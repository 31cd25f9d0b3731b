"""Imports through HTTP: checked whole, written all or nothing, with the API's own rules."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.audit.models import AuditEvent
from app.domains.department.models import Department
from app.domains.location.models import Location
from app.domains.process.models import Process, process_departments, process_roles
from app.domains.role.models import Role
from app.domains.user.models import User
from tests.exchange.helpers import (
    API,
    NDJSON,
    csv_rows,
    export,
    ndjson_rows,
    send_import,
    to_csv,
    to_ndjson,
)
from tests.factories import Factory


@pytest.fixture
async def admin(factory: Factory) -> User:
    return await factory.user(superuser=True, email="admin@example.com")


@pytest.fixture
async def headers(factory: Factory, admin: User) -> dict[str, str]:
    return factory.headers(admin)


async def _count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _errors(response: Response) -> list[dict[str, Any]]:
    body = response.json()
    report = body.get("report", body)
    errors: list[dict[str, Any]] = report["errors"]
    return errors


# --- all or nothing -------------------------------------------------------------------


async def test_one_bad_row_in_a_thousand_writes_nothing_and_is_named(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    rows = [{"title": f"Process {n}", "status": "active"} for n in range(1000)]
    rows[636]["status"] = "finished"

    response = await send_import(client, headers, "processes", to_csv(rows))

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["report"]["rows"] == 1000
    assert problem["report"]["dry_run"] is False
    assert problem["report"]["errors"] == [
        {"row": 637, "field": "status", "message": "Input should be 'draft', 'active' or 'retired'"}
    ]
    assert "1 of 1000 rows" in problem["detail"]
    assert await _count(session, Process) == 0
    assert await _count(session, AuditEvent) == 0


async def test_a_good_thousand_rows_are_created_with_one_audit_event_each(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str], admin: User
) -> None:
    rows = [{"title": f"Process {n}", "criticality": "high"} for n in range(1000)]

    response = await send_import(client, headers, "processes", to_csv(rows))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "rows": 1000,
        "created": 1000,
        "updated": 0,
        "unchanged": 0,
        "errors": [],
        "dry_run": False,
    }
    assert await _count(session, Process) == 1000
    events = (await session.scalars(select(AuditEvent))).all()
    assert len(events) == 1000
    assert {event.request_id for event in events} == {response.headers["x-request-id"]}
    assert {(event.action, event.entity_type, event.actor_id) for event in events} == {
        ("create", "process", admin.id)
    }
    assert events[0].changes["title"] == [None, "Process 0"]
    assert events[0].changes["criticality"] == [None, "high"]


async def test_a_dry_run_checks_everything_and_writes_nothing(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    existing = await client.post(f"{API}/roles", headers=headers, json={"name": "Clerk"})
    rows = [
        {"name": "clerk", "description": "Keeps the books"},  # matched by name, ignoring case
        {"name": "Auditor", "permissions": "audit:read"},
        {"name": "Nobody", "permissions": "no:such"},
    ]

    checked = await send_import(client, headers, "roles", to_csv(rows), dry_run=True)

    assert checked.status_code == 200
    report = checked.json()
    assert (report["rows"], report["created"], report["updated"]) == (3, 1, 1)
    assert report["dry_run"] is True
    assert [(error["row"], error["field"]) for error in report["errors"]] == [(3, "permissions")]
    assert "unknown permissions: no:such" in report["errors"][0]["message"]
    assert await _count(session, Role) == 1
    role = await client.get(f"{API}/roles/{existing.json()['id']}", headers=headers)
    assert role.json()["description"] is None
    assert await _count(session, AuditEvent) == 1  # the POST's


async def test_an_import_updates_rows_matched_by_id_and_leaves_absent_columns_alone(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    created = await client.post(
        f"{API}/resources",
        headers=headers,
        json={"name": "Forklift", "kind": "equipment", "quantity": 3, "description": "Yellow"},
    )
    resource = created.json()
    rows = [{"id": resource["id"], "quantity": "4", "status": "maintenance"}]

    response = await send_import(client, headers, "resources", to_csv(rows))

    assert response.json()["updated"] == 1
    after = (await client.get(f"{API}/resources/{resource['id']}", headers=headers)).json()
    assert (after["quantity"], after["status"], after["description"]) == (
        4,
        "maintenance",
        "Yellow",
    )
    assert after["version"] == 2
    again = await send_import(client, headers, "resources", to_csv(rows))
    assert (again.json()["updated"], again.json()["unchanged"]) == (0, 1)


async def test_a_row_changed_since_its_export_is_refused_by_its_version(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await client.post(f"{API}/departments", headers=headers, json={"name": "Ops"})
    exported = csv_rows((await export(client, headers, "departments")).text)
    await client.patch(created.headers["location"], headers=headers, json={"name": "Operations"})
    exported[0]["description"] = "Runs things"

    response = await send_import(client, headers, "departments", to_csv(exported))

    assert response.status_code == 422
    assert _errors(response) == [
        {
            "row": 1,
            "field": "version",
            "message": "is 1 in the file but 2 now: the department changed since the file "
            "was exported",
        }
    ]


# --- the API's rules ----------------------------------------------------------------------


async def test_rows_obey_the_same_schemas_as_the_api(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    rows = [
        {"name": "HQ", "kind": "site", "country": "fr", "timezone": "europe/paris"},
        {"name": "Depot", "kind": "site", "country": "XX"},
        {"name": "", "kind": "site"},
        {"name": "Cloud", "kind": "nebula"},
        {"name": "Lab", "kind": "room", "timezone": "Mars/Olympus"},
    ]

    response = await send_import(client, headers, "locations", to_csv(rows))

    assert [(e["row"], e["field"]) for e in _errors(response)] == [
        (2, "country"),
        (3, "name"),
        (4, "kind"),
        (5, "timezone"),
    ]
    fixed = await send_import(client, headers, "locations", to_csv(rows[:1]))
    (hq,) = csv_rows((await export(client, headers, "locations")).text)
    assert fixed.json()["created"] == 1
    assert (hq["country"], hq["timezone"]) == ("FR", "Europe/Paris")


async def test_a_natural_key_cannot_be_taken_twice(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    ops = await client.post(
        f"{API}/departments", headers=headers, json={"name": "Ops", "code": "OPS"}
    )
    finance = await client.post(
        f"{API}/departments", headers=headers, json={"name": "Finance", "code": "FIN"}
    )
    rows = [
        {"id": finance.json()["id"], "name": "Finance", "code": "OPS"},
        {"name": "Legal", "code": "LEG"},
        {"name": "Legal twin", "code": "LEG"},
    ]

    response = await send_import(client, headers, "departments", to_csv(rows))

    assert _errors(response) == [
        {"row": 1, "field": "code", "message": f"'OPS' is taken by department {ops.json()['id']}"},
        {"row": 3, "field": "code", "message": "'LEG' is also in row 2"},
    ]


async def test_sibling_names_stay_unique_ignoring_case(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    await client.post(f"{API}/departments", headers=headers, json={"name": "Ops"})
    rows = [{"name": "OPS"}, {"name": "Legal", "parent_code": ""}, {"name": "legal"}]

    response = await send_import(client, headers, "departments", to_csv(rows))

    assert [(e["row"], e["field"]) for e in _errors(response)] == [(1, "name"), (3, "name")]


async def test_a_role_carries_only_permissions_the_importer_holds(
    client: AsyncClient, factory: Factory
) -> None:
    importer = await factory.user(permissions=["roles:write", "processes:read"])
    rows = [
        {"name": "Reader", "permissions": "processes:read"},
        {"name": "Admin", "permissions": "processes:read;users:write"},
    ]

    response = await send_import(client, factory.headers(importer), "roles", to_csv(rows))

    assert response.status_code == 422
    (error,) = _errors(response)
    assert (error["row"], error["field"]) == (2, "permissions")
    assert "users:write" in error["message"]


async def test_roles_beyond_the_importer_import_back_unchanged_but_cannot_change(
    client: AsyncClient, factory: Factory
) -> None:
    await factory.role(name="Admins", permissions=["users:write", "roles:write"])
    importer = await factory.user(permissions=["roles:read", "roles:write"])
    importer_headers = factory.headers(importer)
    exported = ndjson_rows((await export(client, importer_headers, "roles", format="ndjson")).text)

    back = await send_import(
        client, importer_headers, "roles", to_ndjson(exported), media_type=NDJSON
    )
    for row in exported:
        row["description"] = "Edited"
    edited = await send_import(
        client, importer_headers, "roles", to_ndjson(exported), media_type=NDJSON
    )

    assert back.json()["unchanged"] == 2, back.text
    assert [(e["row"], e["field"]) for e in _errors(edited)] == [(1, "permissions")]


async def test_a_role_imported_with_new_permissions_applies_on_its_holders_next_request(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    role = await factory.role(name="Clerk", permissions=["processes:read"])
    holder = await factory.user(roles=[role])
    holder_headers = factory.headers(holder)
    assert (await client.get(f"{API}/audit-events", headers=holder_headers)).status_code == 403

    rows = [{"name": "clerk", "permissions": "processes:read;audit:read"}]
    response = await send_import(client, headers, "roles", to_csv(rows))

    assert response.json()["updated"] == 1
    assert (await client.get(f"{API}/audit-events", headers=holder_headers)).status_code == 200


# --- hierarchies --------------------------------------------------------------------------


async def test_a_child_may_come_before_its_parent(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    rows = [
        {"name": "Payroll", "code": "FIN-PAY", "parent_code": "FIN"},
        {"name": "Accounts", "code": "FIN-ACC", "parent_code": "FIN"},
        {"name": "Salaries", "code": "FIN-PAY-1", "parent_code": "FIN-PAY"},
        {"name": "Finance", "code": "FIN"},
    ]

    response = await send_import(client, headers, "departments", to_csv(rows))

    assert response.json()["created"] == 4, response.text
    codes = dict((await session.execute(select(Department.id, Department.code))).all())
    ids = {code: department_id for department_id, code in codes.items()}
    parents = dict((await session.execute(select(Department.code, Department.parent_id))).all())
    assert parents == {
        "FIN": None,
        "FIN-PAY": ids["FIN"],
        "FIN-ACC": ids["FIN"],
        "FIN-PAY-1": ids["FIN-PAY"],
    }


async def test_locations_name_parents_by_the_ids_the_file_gives(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    rows = [
        {"id": 502, "name": "Floor 1", "kind": "floor", "parent_id": 501},
        {"id": 501, "name": "Building A", "kind": "building", "parent_id": 500},
        {"id": 500, "name": "Campus", "kind": "site"},
    ]

    response = await send_import(client, headers, "locations", to_ndjson(rows), media_type=NDJSON)

    assert response.json()["created"] == 3, response.text
    found = (await session.execute(select(Location.id, Location.parent_id))).all()
    assert sorted(found) == [(500, None), (501, 500), (502, 501)]
    # The API draws new ids past the ones the file gave.
    created = await client.post(
        f"{API}/locations", headers=headers, json={"name": "Annex", "kind": "site"}
    )
    assert created.json()["id"] > 502


async def test_a_new_row_cannot_take_an_id_that_would_exhaust_the_sequence(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    rows = [{"id": 2**62, "name": "Far away", "kind": "site"}]

    response = await send_import(client, headers, "locations", to_ndjson(rows), media_type=NDJSON)

    assert [(e["row"], e["field"]) for e in _errors(response)] == [(1, "id")]
    created = await client.post(
        f"{API}/locations", headers=headers, json={"name": "Near", "kind": "site"}
    )
    assert created.json()["id"] == 1


async def test_a_cycle_is_refused_in_the_file_and_through_the_existing_tree(
    client: AsyncClient, session: AsyncSession, headers: dict[str, str]
) -> None:
    top = await client.post(
        f"{API}/departments", headers=headers, json={"name": "Top", "code": "TOP"}
    )
    below = await client.post(
        f"{API}/departments",
        headers=headers,
        json={"name": "Below", "code": "BELOW", "parent_id": top.json()["id"]},
    )
    in_file = [
        {"name": "A", "code": "A", "parent_code": "B"},
        {"name": "B", "code": "B", "parent_code": "A"},
    ]
    through_tree = [{"id": top.json()["id"], "parent_id": below.json()["id"]}]

    first = await send_import(client, headers, "departments", to_csv(in_file))
    second = await send_import(client, headers, "departments", to_csv(through_tree))

    assert [(e["row"], e["field"]) for e in _errors(first)] == [
        (1, "parent_code"),
        (2, "parent_code"),
    ]
    assert _errors(first)[0]["message"] == "makes a cycle: row 1 -> row 2 -> row 1"
    top_id, below_id = top.json()["id"], below.json()["id"]
    assert _errors(second) == [
        {
            "row": 1,
            "field": "parent_id",
            "message": f"makes a cycle: {top_id} -> {below_id} -> {top_id}",
        }
    ]
    assert await _count(session, Department) == 2


# --- references and links -----------------------------------------------------------------


async def test_links_are_named_by_id_or_natural_key_and_unknown_ones_are_named(
    client: AsyncClient, session: AsyncSession, factory: Factory, headers: dict[str, str]
) -> None:
    auditor = await factory.role(name="Auditor")
    ops = await client.post(
        f"{API}/departments", headers=headers, json={"name": "Ops", "code": "OPS"}
    )
    owner = await factory.user(email="owner@example.com")
    good = [
        {
            "title": "By key",
            "department_codes": "OPS",
            "role_names": "auditor",
            "owner_email": "OWNER@example.com",
        },
        {"title": "By id", "department_ids": str(ops.json()["id"]), "role_ids": str(auditor.id)},
    ]
    bad = [
        {
            "title": "Unknown",
            "department_codes": "NOPE;OPS",
            "role_ids": "999",
            "owner_email": "x@y.z",
        },
    ]

    refused = await send_import(client, headers, "processes", to_csv(bad))
    created = await send_import(client, headers, "processes", to_csv(good))

    assert _errors(refused) == [
        {"row": 1, "field": "owner_email", "message": "names no user with email 'x@y.z'"},
        {"row": 1, "field": "department_codes", "message": "names no department with code 'NOPE'"},
        {"row": 1, "field": "role_ids", "message": "names no role with id 999"},
    ]
    assert created.json()["created"] == 2, created.text
    links = (await session.execute(select(process_departments.c.department_id))).scalars().all()
    assert links == [ops.json()["id"], ops.json()["id"]]
    roles = (await session.execute(select(process_roles.c.role_id))).scalars().all()
    assert roles == [auditor.id, auditor.id]
    owners = (await session.execute(select(Process.owner_id).order_by(Process.id))).scalars().all()
    assert owners == [owner.id, None]


async def test_an_id_and_a_key_naming_different_rows_are_refused(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    auditor = await factory.role(name="Auditor")
    await factory.role(name="Clerk")
    rows = [{"title": "Mixed", "role_ids": str(auditor.id), "role_names": "Clerk"}]

    response = await send_import(client, headers, "processes", to_csv(rows))

    assert _errors(response) == [
        {
            "row": 1,
            "field": "role_ids",
            "message": f"id {auditor.id} and name 'Clerk' name different roles",
        }
    ]


async def test_links_sent_replace_the_set_and_absent_ones_stay(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    ops, fin = await factory.department(name="Ops"), await factory.department(name="Fin")
    role = await factory.role(name="Clerk")
    created = await client.post(
        f"{API}/processes",
        headers=headers,
        json={"title": "Pay", "department_ids": [ops.id], "role_ids": [role.id]},
    )
    process = created.json()
    rows = [{"id": process["id"], "departments": [{"id": fin.id, "name": "whatever"}]}]

    response = await send_import(client, headers, "processes", to_ndjson(rows), media_type=NDJSON)

    assert response.json()["updated"] == 1, response.text
    after = (await client.get(f"{API}/processes/{process['id']}", headers=headers)).json()
    assert [d["id"] for d in after["departments"]] == [fin.id]
    assert [r["id"] for r in after["roles"]] == [role.id]
    assert after["version"] == 2
    trail = await client.get(
        f"{API}/audit-events",
        headers=headers,
        params={"entity_type": "process", "entity_id": process["id"], "action": "update"},
    )
    (event,) = trail.json()["items"]
    assert event["changes"] == {"department_ids": {"added": [fin.id], "removed": [ops.id]}}


# --- the file itself ----------------------------------------------------------------------


async def test_a_malformed_file_is_reported_row_by_row(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    csv_file = "name,kind,quantity\nLaptop,system,2\nDesk,equipment\nChair,equipment,two\n"
    ndjson_file = (
        '{"name": "Laptop", "kind": "system"}\n{not json}\n[1, 2]\n{"name": 7, "kind": "system"}\n'
    )
    unknown_column = "name,colour\nLaptop,red\n"

    csv_answer = await send_import(client, headers, "resources", csv_file)
    ndjson_answer = await send_import(client, headers, "resources", ndjson_file, media_type=NDJSON)
    unknown_answer = await send_import(client, headers, "resources", unknown_column)
    not_text = await send_import(client, headers, "resources", b"name\n\xff\xfe\n")

    assert [(e["row"], e["field"]) for e in _errors(csv_answer)] == [(2, None), (3, "quantity")]
    assert [(e["row"], e["field"]) for e in _errors(ndjson_answer)] == [
        (2, None),
        (3, None),
        (4, "name"),
    ]
    assert _errors(unknown_answer) == [
        {"row": 0, "field": "colour", "message": "is not a column of resources"}
    ]
    assert _errors(not_text)[0]["row"] == 0


async def test_an_import_body_is_csv_or_ndjson(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    response = await send_import(
        client, headers, "roles", '{"name": "Clerk"}', media_type="application/json"
    )
    assert response.status_code == 415
    assert "text/csv" in response.json()["detail"]


async def test_ndjson_values_are_as_strict_as_the_apis_json(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    rows = [
        {"name": "Desk", "kind": "equipment", "quantity": "2"},
        {"id": "7", "name": "Chair", "kind": "equipment"},
    ]

    response = await send_import(client, headers, "resources", to_ndjson(rows), media_type=NDJSON)

    assert [(e["row"], e["field"]) for e in _errors(response)] == [(1, "quantity"), (2, "id")]


async def test_read_only_columns_of_an_export_are_ignored(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    await client.post(f"{API}/processes", headers=headers, json={"title": "Pay"})
    exported = ndjson_rows((await export(client, headers, "processes", format="ndjson")).text)
    exported[0].update(created_at="2000-01-01T00:00:00Z", created_by_id=99999, review_due_at=None)

    response = await send_import(
        client, headers, "processes", to_ndjson(exported), media_type=NDJSON
    )

    assert response.json()["unchanged"] == 1, response.text


async def test_every_problem_of_a_row_is_reported(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    rows = [{"title": "", "status": "finished", "department_codes": "NOPE", "role_names": "Nobody"}]

    response = await send_import(client, headers, "processes", to_csv(rows))

    assert sorted(e["field"] for e in _errors(response)) == [
        "department_codes",
        "role_names",
        "status",
        "title",
    ]


async def test_a_stale_id_gives_way_to_the_natural_key_unless_it_names_another_row(
    client: AsyncClient, session: AsyncSession, factory: Factory, headers: dict[str, str]
) -> None:
    owner = await factory.user(email="owner@example.com")
    other = await factory.user(email="other@example.com")
    from_elsewhere = [{"title": "A", "owner_id": 999999, "owner_email": "owner@example.com"}]
    contradicting = [{"title": "B", "owner_id": other.id, "owner_email": "owner@example.com"}]

    accepted = await send_import(client, headers, "processes", to_csv(from_elsewhere))
    refused = await send_import(client, headers, "processes", to_csv(contradicting))

    assert accepted.json()["created"] == 1, accepted.text
    assert await session.scalar(select(Process.owner_id)) == owner.id
    assert _errors(refused) == [
        {
            "row": 1,
            "field": "owner_email",
            "message": f"id {other.id} and email 'owner@example.com' name different users",
        }
    ]
