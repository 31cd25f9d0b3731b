"""The graph around a process and the impact of a failure, on a small organisation with
known answers: a chain of four dependencies and a cycle.

    Hamburg (site)      Receive goods (high, active; owned by Olivia), Restock (medium)
      Hamburg A (building)  Count stock
    Lyon (site)         Unrelated

    Receive goods -> Check goods (critical, active) -> Store goods (medium)
      -> Pick orders (low) -> Ship orders (critical, retired)
                          <-> Plan picking (high)         (a cycle of two)
    Receive goods -> Restock (also at Hamburg: directly affected, not downstream)
    Count stock -> Reorder

An arrow points from a process to one that needs it: the way work and failures flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from httpx import AsyncClient

from app.domains.dependency import queries as dependency_queries
from tests.factories import Factory
from tests.statements import count_statements

URL = "/api/v1/processes"
IMPACT = "/api/v1/impact"


@dataclass
class Organisation:
    hamburg: int
    hamburg_a: int
    lyon: int
    finance: int
    erp: int
    clerk: int
    owner: int
    ids: dict[str, int]

    def __getitem__(self, title: str) -> int:
        return self.ids[title]


@pytest.fixture
async def headers(factory: Factory) -> dict[str, str]:
    return factory.headers(await factory.user(superuser=True))


@pytest.fixture
async def org(client: AsyncClient, factory: Factory, headers: dict[str, str]) -> Organisation:
    hamburg = await factory.location(name="Hamburg")
    hamburg_a = await factory.location(name="Hamburg A", parent=hamburg)
    lyon = await factory.location(name="Lyon")
    finance = await factory.department(name="Finance")
    erp = await factory.resource(name="ERP")
    clerk = await factory.role(name="Clerk")
    owner = await factory.user(full_name="Olivia Owner")
    ids: dict[str, int] = {}

    async def process(title: str, needs: tuple[str, ...] = (), **body: Any) -> None:
        response = await client.post(URL, headers=headers, json={"title": title, **body})
        assert response.status_code == 201, response.text
        ids[title] = response.json()["id"]

    await process(
        "Receive goods",
        criticality="high",
        status="active",
        owner_id=owner.id,
        location_ids=[hamburg.id],
    )
    await process("Check goods", criticality="critical", status="active")
    await process("Store goods", criticality="medium", department_ids=[finance.id])
    await process("Pick orders", criticality="low")
    await process("Ship orders", criticality="critical", status="retired")
    await process("Plan picking", criticality="high")
    await process("Restock", criticality="medium", location_ids=[hamburg.id])
    await process("Count stock", location_ids=[hamburg_a.id], resource_ids=[erp.id])
    await process("Reorder", role_ids=[clerk.id])
    await process("Unrelated", location_ids=[lyon.id])
    needs = {
        "Check goods": [("Receive goods", "input")],
        "Store goods": [("Check goods", "input")],
        "Pick orders": [("Store goods", "input"), ("Plan picking", "approval")],
        "Ship orders": [("Pick orders", "input")],
        "Plan picking": [("Pick orders", "service")],
        "Restock": [("Receive goods", None)],
        "Reorder": [("Count stock", "input")],
    }
    for title, needed in needs.items():
        response = await client.put(
            f"{URL}/{ids[title]}/dependencies",
            headers=headers,
            json=[{"process_id": ids[other], "kind": kind} for other, kind in needed],
        )
        assert response.status_code == 200, response.text
    return Organisation(
        hamburg.id, hamburg_a.id, lyon.id, finance.id, erp.id, clerk.id, owner.id, ids
    )


def _titles(org: Organisation, ids: list[int]) -> list[str]:
    names = {process_id: title for title, process_id in org.ids.items()}
    return [names[process_id] for process_id in ids]


# --- the graph ----------------------------------------------------------------------


async def test_the_graph_around_a_process_has_nodes_edges_and_its_cycle(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    response = await client.get(
        f"{URL}/{org['Pick orders']}/graph", headers=headers, params={"depth": 1}
    )
    assert response.status_code == 200
    graph = response.json()
    assert (graph["root"], graph["direction"], graph["depth"]) == (org["Pick orders"], "both", 1)
    depths = {node["id"]: node["depth"] for node in graph["nodes"]}
    assert depths == {
        org["Pick orders"]: 0,
        org["Store goods"]: 1,
        org["Plan picking"]: 1,
        org["Ship orders"]: 1,
    }
    edges = {(edge["from"], edge["to"], edge["kind"]) for edge in graph["edges"]}
    assert edges == {
        (org["Store goods"], org["Pick orders"], "input"),
        (org["Plan picking"], org["Pick orders"], "approval"),
        (org["Pick orders"], org["Plan picking"], "service"),
        (org["Pick orders"], org["Ship orders"], "input"),
    }
    assert graph["cycles"] == [[org["Pick orders"], org["Plan picking"], org["Pick orders"]]]
    assert graph["truncated"] is False
    ship = next(node for node in graph["nodes"] if node["id"] == org["Ship orders"])
    assert ship == {
        "id": org["Ship orders"],
        "title": "Ship orders",
        "status": "retired",
        "criticality": "critical",
        "owner": None,
        "depth": 1,
    }


async def test_the_graph_follows_one_direction_to_the_depth_asked(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    downstream = (
        await client.get(
            f"{URL}/{org['Receive goods']}/graph",
            headers=headers,
            params={"direction": "downstream", "depth": 3},
        )
    ).json()
    assert [(n["title"], n["depth"]) for n in downstream["nodes"]] == [
        ("Receive goods", 0),
        ("Check goods", 1),
        ("Restock", 1),
        ("Store goods", 2),
        ("Pick orders", 3),
    ]
    assert downstream["nodes"][0]["owner"] == {"id": org.owner, "full_name": "Olivia Owner"}
    assert downstream["cycles"] == []
    upstream = (
        await client.get(
            f"{URL}/{org['Ship orders']}/graph",
            headers=headers,
            params={"direction": "upstream", "depth": 10},
        )
    ).json()
    assert sorted(_titles(org, [n["id"] for n in upstream["nodes"]])) == [
        "Check goods",
        "Pick orders",
        "Plan picking",
        "Receive goods",
        "Ship orders",
        "Store goods",
    ]
    assert upstream["cycles"] == [[org["Pick orders"], org["Plan picking"], org["Pick orders"]]]


async def test_a_walk_through_a_cycle_ends_at_any_depth(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    with count_statements() as statements:
        response = await client.get(
            f"{URL}/{org['Plan picking']}/graph", headers=headers, params={"depth": 10}
        )
    assert response.status_code == 200
    graph = response.json()
    assert len(graph["nodes"]) == 6
    assert graph["cycles"] == [[org["Pick orders"], org["Plan picking"], org["Pick orders"]]]
    # The nodes, then the edges among them.
    assert len([s for s in statements if "WITH RECURSIVE" in s]) == 1


async def test_a_graph_larger_than_its_limit_is_cut_nearest_first(
    client: AsyncClient,
    headers: dict[str, str],
    org: Organisation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dependency_queries, "GRAPH_MOST", 3)
    graph = (
        await client.get(
            f"{URL}/{org['Receive goods']}/graph",
            headers=headers,
            params={"direction": "downstream", "depth": 10},
        )
    ).json()
    assert graph["truncated"] is True
    assert _titles(org, [n["id"] for n in graph["nodes"]]) == [
        "Receive goods",
        "Check goods",
        "Restock",
    ]
    assert {(e["from"], e["to"]) for e in graph["edges"]} == {
        (org["Receive goods"], org["Check goods"]),
        (org["Receive goods"], org["Restock"]),
    }


@pytest.mark.parametrize(
    "params", [{"depth": 0}, {"depth": 11}, {"direction": "sideways"}, {"depth": "x"}]
)
async def test_invalid_graph_parameters_answer_422(
    client: AsyncClient, headers: dict[str, str], org: Organisation, params: dict[str, Any]
) -> None:
    response = await client.get(
        f"{URL}/{org['Receive goods']}/graph", headers=headers, params=params
    )
    assert response.status_code == 422


# --- impact -------------------------------------------------------------------------


async def test_the_impact_of_a_site_lists_what_stops_critical_first_with_paths(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    response = await client.get(IMPACT, headers=headers, params={"location_id": org.hamburg})
    assert response.status_code == 200
    body = response.json()
    listed = [(item["title"], item["criticality"], item["depth"]) for item in body["items"]]
    assert listed == [
        ("Check goods", "critical", 1),
        ("Ship orders", "critical", 4),
        ("Receive goods", "high", 0),
        ("Plan picking", "high", 4),
        ("Restock", "medium", 0),
        ("Store goods", "medium", 2),
        ("Pick orders", "low", 3),
    ]
    paths = {item["title"]: _titles(org, item["path"]) for item in body["items"]}
    assert paths["Receive goods"] == ["Receive goods"]
    assert paths["Ship orders"] == [
        "Receive goods",
        "Check goods",
        "Store goods",
        "Pick orders",
        "Ship orders",
    ]
    assert paths["Plan picking"][-2:] == ["Pick orders", "Plan picking"]
    receive = body["items"][2]
    assert receive["owner"] == {"id": org.owner, "full_name": "Olivia Owner"}
    assert receive["status"] == "active"
    assert body["items"][0]["owner"] is None
    assert body["next_cursor"] is None
    assert body["summary"] == {
        "total": 7,
        "direct": 2,
        "downstream": 5,
        "by_criticality": {"critical": 2, "high": 2, "medium": 2, "low": 1},
        "by_status": {"draft": 4, "active": 2, "retired": 1},
        "longest_chain": [
            org["Receive goods"],
            org["Check goods"],
            org["Store goods"],
            org["Pick orders"],
            org["Ship orders"],
        ],
        "cycles": [[org["Pick orders"], org["Plan picking"], org["Pick orders"]]],
    }


async def test_include_descendants_fails_the_whole_site(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    body = (
        await client.get(
            IMPACT,
            headers=headers,
            params={"location_id": org.hamburg, "include_descendants": "true"},
        )
    ).json()
    depths = {item["title"]: item["depth"] for item in body["items"]}
    assert depths["Count stock"] == 0
    assert depths["Reorder"] == 1
    assert body["summary"]["total"] == 9
    alone = await client.get(IMPACT, headers=headers, params={"location_id": org.hamburg_a})
    assert [item["title"] for item in alone.json()["items"]] == ["Count stock", "Reorder"]


async def test_depth_limits_how_far_downstream_the_impact_goes(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    body = (
        await client.get(IMPACT, headers=headers, params={"location_id": org.hamburg, "depth": 2})
    ).json()
    assert sorted(item["title"] for item in body["items"]) == [
        "Check goods",
        "Receive goods",
        "Restock",
        "Store goods",
    ]
    assert body["summary"]["cycles"] == []
    direct = (
        await client.get(IMPACT, headers=headers, params={"location_id": org.hamburg, "depth": 0})
    ).json()
    assert direct["summary"]["downstream"] == 0
    assert direct["summary"]["longest_chain"] in ([org["Receive goods"]], [org["Restock"]])


async def test_every_kind_of_failure_and_several_at_once(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    async def titles(**params: Any) -> list[str]:
        response = await client.get(IMPACT, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return sorted(item["title"] for item in response.json()["items"])

    assert await titles(department_id=org.finance) == [
        "Pick orders",
        "Plan picking",
        "Ship orders",
        "Store goods",
    ]
    assert await titles(resource_id=org.erp) == ["Count stock", "Reorder"]
    assert await titles(role_id=org.clerk) == ["Reorder"]
    assert await titles(role_id=org.clerk, location_id=org.lyon) == ["Reorder", "Unrelated"]
    department = await client.get(IMPACT, headers=headers, params={"department_id": org.finance})
    assert department.json()["summary"]["cycles"] == [
        [org["Pick orders"], org["Plan picking"], org["Pick orders"]]
    ]


async def test_a_large_impact_is_keyset_paginated_with_the_same_summary(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    full = (await client.get(IMPACT, headers=headers, params={"location_id": org.hamburg})).json()
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"location_id": org.hamburg, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(IMPACT, headers=headers, params=params)).json()
        assert page["summary"] == full["summary"]
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [i for page in pages for i in page] == [item["id"] for item in full["items"]]

    listed = await client.get(URL, headers=headers, params={"limit": 2})
    foreign = await client.get(
        IMPACT,
        headers=headers,
        params={"location_id": org.hamburg, "cursor": listed.json()["next_cursor"]},
    )
    assert foreign.status_code == 422


async def test_the_impact_is_one_walk_in_one_statement(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    await client.get("/api/v1/permissions", headers=headers)  # warm the token cache
    with count_statements() as statements:
        response = await client.get(
            IMPACT, headers=headers, params={"location_id": org.hamburg, "limit": 2}
        )
    assert response.status_code == 200
    # The location's existence, then the walk with its page and summary.
    assert len(statements) == 2
    assert "WITH RECURSIVE" in statements[1]


async def test_the_impact_needs_read_on_processes_and_on_each_kind_named(
    client: AsyncClient, factory: Factory, org: Organisation
) -> None:
    async def status(permissions: list[str], **params: Any) -> int:
        user = await factory.user(permissions=permissions)
        response = await client.get(IMPACT, headers=factory.headers(user), params=params)
        return response.status_code

    assert await status(["processes:read"], location_id=org.hamburg) == 403
    assert await status(["locations:read"], location_id=org.hamburg) == 403
    assert await status(["processes:read", "locations:read"], location_id=org.hamburg) == 200
    both = {"location_id": org.hamburg, "department_id": org.finance}
    assert await status(["processes:read", "locations:read"], **both) == 403
    assert await status(["processes:read", "locations:read", "departments:read"], **both) == 200
    assert await status(["processes:read", "resources:read"], resource_id=org.erp) == 200
    assert await status(["processes:read", "resources:read"], role_id=org.clerk) == 403
    assert await status(["processes:read", "roles:read"], role_id=org.clerk) == 200


async def test_the_impact_needs_something_that_exists_to_fail(
    client: AsyncClient, headers: dict[str, str], org: Organisation
) -> None:
    nothing = await client.get(IMPACT, headers=headers)
    assert nothing.status_code == 422
    assert nothing.headers["content-type"] == "application/problem+json"
    assert (
        await client.get(IMPACT, headers=headers, params={"location_id": 424242})
    ).status_code == 404
    missing_role = await client.get(
        IMPACT, headers=headers, params={"location_id": org.hamburg, "role_id": 424242}
    )
    assert missing_role.status_code == 404
    for params in ({"location_id": 0}, {"location_id": org.hamburg, "depth": 11}):
        assert (await client.get(IMPACT, headers=headers, params=params)).status_code == 422


async def test_a_failure_that_stops_nothing_answers_an_empty_impact(
    client: AsyncClient, factory: Factory, headers: dict[str, str], org: Organisation
) -> None:
    empty = await factory.location(name="Empty warehouse")
    body = (await client.get(IMPACT, headers=headers, params={"location_id": empty.id})).json()
    assert body["items"] == []
    assert body["next_cursor"] is None
    assert body["summary"]["total"] == 0
    assert body["summary"]["longest_chain"] == []
    assert body["summary"]["by_status"] == {"draft": 0, "active": 0, "retired": 0}
