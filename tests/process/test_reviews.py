"""Review due dates through HTTP: the fields, marking a review, the overdue list, the gauge."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.pagination import PageParams
from app.domains.process import queries as process_queries
from app.domains.process.models import Process
from app.domains.process.schemas import ProcessFilters
from app.domains.user.models import User
from tests.conftest import ClientFactory
from tests.factories import Factory
from tests.statements import count_statements

URL = "/api/v1/processes"
GAUGE = "process_atlas_processes_review_overdue"


@pytest.fixture
async def writer(factory: Factory) -> User:
    return await factory.user(permissions=["processes:read", "processes:write"])


@pytest.fixture
async def headers(factory: Factory, writer: User) -> dict[str, str]:
    return factory.headers(writer)


async def _create(client: AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(URL, headers=headers, json={"title": "Onboarding", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _age(
    session: AsyncSession, process_id: int, *, created: float, reviewed: float | None = None
) -> None:
    """Pretend the process was created (and reviewed) that many days ago."""
    values: dict[str, Any] = {"created_at": func.now() - timedelta(days=created)}
    if reviewed is not None:
        values["last_reviewed_at"] = func.now() - timedelta(days=reviewed)
    await session.execute(update(Process).where(Process.id == process_id).values(**values))
    await session.commit()


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


async def _walk(client: AsyncClient, headers: dict[str, str], **params: Any) -> list[list[int]]:
    """The ids of every page of the list, page by page."""
    pages: list[list[int]] = []
    cursor = None
    while True:
        response = await client.get(
            URL, headers=headers, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        pages.append(_ids(response.json()))
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


# --- who may call -----------------------------------------------------------------


async def test_review_without_a_token_answers_401(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    response = await client.post(f"{URL}/{created['id']}/review")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_review_without_the_write_permission_answers_403_and_changes_nothing(
    client: AsyncClient, factory: Factory, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, review_interval_days=30)
    reader = factory.headers(await factory.user(permissions=["processes:read"]))
    response = await client.post(f"{URL}/{created['id']}/review", headers=reader)
    assert response.status_code == 403
    assert (await client.get(f"{URL}/{created['id']}", headers=reader)).json() == created


async def test_reviewing_an_unknown_process_answers_404(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(f"{URL}/424242/review", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.post(f"{URL}/{2**63}/review", headers=headers)).status_code == 422


# --- the fields ---------------------------------------------------------------------


async def test_a_process_without_an_interval_is_never_due(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    assert created["review_interval_days"] is None
    assert created["last_reviewed_at"] is None
    assert created["review_due_at"] is None


async def test_the_first_review_is_due_one_interval_after_the_creation(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, review_interval_days=30)
    assert created["review_interval_days"] == 30
    assert created["last_reviewed_at"] is None
    assert _at(created["review_due_at"]) == _at(created["created_at"]) + timedelta(days=30)
    read = await client.get(f"{URL}/{created['id']}", headers=headers)
    assert read.json() == created


async def test_patch_changes_or_clears_the_interval_and_the_due_date_follows(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, review_interval_days=30)
    path = f"{URL}/{created['id']}"
    longer = (await client.patch(path, headers=headers, json={"review_interval_days": 365})).json()
    assert longer["version"] == 2
    assert _at(longer["review_due_at"]) == _at(created["created_at"]) + timedelta(days=365)
    untouched = (await client.patch(path, headers=headers, json={"title": "Renamed"})).json()
    assert untouched["review_interval_days"] == 365
    cleared = (
        await client.patch(path, headers=headers, json={"review_interval_days": None})
    ).json()
    assert cleared["review_interval_days"] is None
    assert cleared["review_due_at"] is None
    assert cleared["version"] == 4


@pytest.mark.parametrize(
    "body",
    [
        {"review_interval_days": 0},
        {"review_interval_days": -1},
        {"review_interval_days": 3651},
        {"review_interval_days": "30"},
        {"review_interval_days": 30.5},
        {"review_interval_days": True},
        {"last_reviewed_at": "2026-01-01T00:00:00Z"},
        {"review_due_at": "2026-01-01T00:00:00Z"},
    ],
)
async def test_invalid_review_fields_answer_422_on_create_and_patch(
    client: AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.post(URL, headers=headers, json={"title": "x", **body})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    created = await _create(client, headers)
    response = await client.patch(f"{URL}/{created['id']}", headers=headers, json=body)
    assert response.status_code == 422, response.text


async def test_the_interval_bounds_are_accepted(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    for days in (1, 3650):
        assert (await _create(client, headers, review_interval_days=days))[
            "review_interval_days"
        ] == days


# --- marking a review ---------------------------------------------------------------


async def test_review_marks_the_process_reviewed_now_and_makes_a_new_version(
    client: AsyncClient, headers: dict[str, str], session: AsyncSession
) -> None:
    created = await _create(client, headers, review_interval_days=90)
    await _age(session, created["id"], created=200)
    path = f"{URL}/{created['id']}"
    response = await client.post(f"{path}/review", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["etag"] == 'W/"2"'
    assert body["version"] == 2
    # Set from the transaction's clock, like updated_at: the same instant.
    assert body["last_reviewed_at"] == body["updated_at"]
    assert _at(body["last_reviewed_at"]) > _at(created["created_at"])
    assert _at(body["review_due_at"]) == _at(body["last_reviewed_at"]) + timedelta(days=90)
    read = await client.get(path, headers=headers)
    assert read.json() == body
    assert read.headers["etag"] == 'W/"2"'

    again = await client.post(f"{path}/review", headers=headers)
    assert again.headers["etag"] == 'W/"3"'
    assert _at(again.json()["last_reviewed_at"]) > _at(body["last_reviewed_at"])


async def test_a_process_without_an_interval_can_be_reviewed_and_stays_undue(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers)
    body = (await client.post(f"{URL}/{created['id']}/review", headers=headers)).json()
    assert body["last_reviewed_at"] is not None
    assert body["review_due_at"] is None


async def test_review_with_a_stale_etag_answers_412_and_changes_nothing(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, review_interval_days=30)
    path = f"{URL}/{created['id']}"
    await client.patch(path, headers=headers, json={"title": "Renamed"})
    stale = await client.post(f"{path}/review", headers={**headers, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"2"'
    assert (await client.get(path, headers=headers)).json()["last_reviewed_at"] is None
    current = await client.post(f"{path}/review", headers={**headers, "If-Match": 'W/"2"'})
    assert current.status_code == 200
    assert current.headers["etag"] == 'W/"3"'


async def test_concurrent_reviews_with_one_etag_let_exactly_one_through(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, review_interval_days=30)
    path = f"{URL}/{created['id']}/review"
    responses = await asyncio.gather(
        *(client.post(path, headers={**headers, "If-Match": 'W/"1"'}) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * 7
    unconditional = await asyncio.gather(*(client.post(path, headers=headers) for _ in range(5)))
    assert [r.status_code for r in unconditional] == [200] * 5
    assert sorted(r.json()["version"] for r in unconditional) == [3, 4, 5, 6, 7]


async def test_every_review_leaves_an_update_event_naming_the_review_times(
    client: AsyncClient, factory: Factory, headers: dict[str, str], writer: User
) -> None:
    auditor = factory.headers(await factory.user(permissions=["audit:read"]))
    created = await _create(client, headers, review_interval_days=30)
    path = f"{URL}/{created['id']}/review"
    first = (await client.post(path, headers=headers)).json()
    second = (await client.post(path, headers=headers)).json()
    events = (
        await client.get(
            "/api/v1/audit-events",
            headers=auditor,
            params={"entity_type": "process", "entity_id": created["id"]},
        )
    ).json()["items"]
    assert [e["action"] for e in events] == ["create", "update", "update"]
    assert all(e["actor_id"] == writer.id for e in events)
    assert events[0]["changes"]["review_interval_days"] == [None, 30]
    assert list(events[1]["changes"]) == ["last_reviewed_at"]
    old, new = events[1]["changes"]["last_reviewed_at"]
    assert (old, _at(new)) == (None, _at(first["last_reviewed_at"]))
    old, new = events[2]["changes"]["last_reviewed_at"]
    assert (_at(old), _at(new)) == (_at(first["last_reviewed_at"]), _at(second["last_reviewed_at"]))


async def test_get_by_id_with_the_review_fields_is_still_one_statement(
    client: AsyncClient, headers: dict[str, str]
) -> None:
    created = await _create(client, headers, review_interval_days=30)
    await client.get("/api/v1/permissions", headers=headers)  # warm the token cache
    with count_statements() as statements:
        read = await client.get(f"{URL}/{created['id']}", headers=headers)
    assert read.json()["review_due_at"] == created["review_due_at"]
    assert len(statements) == 1


# --- the overdue list ---------------------------------------------------------------


@pytest.fixture
async def overdue(
    client: AsyncClient, headers: dict[str, str], session: AsyncSession
) -> dict[str, int]:
    """Four overdue processes (by 30, 20, 5 and 1 days) and two that are not, by name."""
    plans = {
        # name: (interval, created days ago, reviewed days ago)
        "by 20 days": (10, 30.0, None),
        "not yet due": (100, 30.0, None),
        "by 5 days": (5, 10.0, None),
        "no interval": (None, 400.0, None),
        "by 1 day": (1, 400.0, 2.0),
        "by 30 days": (30, 60.0, None),
        "reviewed in time": (30, 400.0, 10.0),
    }
    ids = {}
    for name, (interval, created, reviewed) in plans.items():
        body = await _create(client, headers, title=name, review_interval_days=interval)
        await _age(session, body["id"], created=created, reviewed=reviewed)
        ids[name] = body["id"]
    return ids


async def test_review_overdue_pages_through_overdue_processes_most_overdue_first(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    expected = [overdue[name] for name in ("by 30 days", "by 20 days", "by 5 days", "by 1 day")]
    assert await _walk(client, headers, review_overdue="true", limit=2) == [
        expected[:2],
        expected[2:],
    ]
    assert await _walk(client, headers, review_overdue="true", limit=3) == [
        expected[:3],
        expected[3:],
    ]
    page = (await client.get(URL, headers=headers, params={"review_overdue": "true"})).json()
    assert all(
        _at(item["review_due_at"]) < datetime.now(_at(item["created_at"]).tzinfo)
        for item in page["items"]
    )
    due_dates = [_at(item["review_due_at"]) for item in page["items"]]
    assert due_dates == sorted(due_dates)


async def test_review_overdue_false_lists_the_others_in_id_order(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    others = sorted(overdue[name] for name in ("not yet due", "no interval", "reviewed in time"))
    assert await _walk(client, headers, review_overdue="false", limit=2) == [others[:2], others[2:]]


async def test_the_overdue_list_sorts_as_asked_and_counts_with_include_total(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    least_first = [overdue[name] for name in ("by 1 day", "by 5 days", "by 20 days", "by 30 days")]
    assert await _walk(client, headers, review_overdue="true", sort="-review_due_at", limit=3) == [
        least_first[:3],
        least_first[3:],
    ]
    by_title = await _walk(client, headers, review_overdue="true", sort="title")
    assert by_title == [
        [overdue[name] for name in ("by 1 day", "by 20 days", "by 30 days", "by 5 days")]
    ]
    counted = await client.get(
        URL, headers=headers, params={"review_overdue": "true", "include_total": "true", "limit": 1}
    )
    assert counted.json()["total"] == 4


async def test_only_the_overdue_list_sorts_by_review_due_at(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    for params in ({"sort": "review_due_at"}, {"sort": "review_due_at", "review_overdue": "false"}):
        response = await client.get(URL, headers=headers, params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    first = (
        await client.get(URL, headers=headers, params={"review_overdue": "true", "limit": 1})
    ).json()
    foreign = await client.get(
        URL, headers=headers, params={"cursor": first["next_cursor"], "limit": 1}
    )
    assert foreign.status_code == 422


async def test_a_reviewed_process_leaves_the_overdue_list(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    most = overdue["by 30 days"]
    assert (await client.post(f"{URL}/{most}/review", headers=headers)).status_code == 200
    assert await _walk(client, headers, review_overdue="true") == [
        [overdue[name] for name in ("by 20 days", "by 5 days", "by 1 day")]
    ]


async def test_the_overdue_filter_combines_with_the_others(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    await client.patch(f"{URL}/{overdue['by 5 days']}", headers=headers, json={"status": "active"})
    pages = await _walk(client, headers, review_overdue="true", status="active")
    assert pages == [[overdue["by 5 days"]]]


async def test_an_overdue_page_takes_two_statements(
    client: AsyncClient, headers: dict[str, str], overdue: dict[str, int]
) -> None:
    await client.get("/api/v1/permissions", headers=headers)  # warm the token cache
    for params in ({"review_overdue": "true", "limit": 2}, {"review_overdue": "true"}):
        with count_statements() as statements:
            response = await client.get(URL, headers=headers, params=params)
        assert response.status_code == 200
        assert len(statements) == 2


async def _plan(session: AsyncSession, statement: Any) -> str:
    """The plan PostgreSQL picks when a sequential scan is its last resort (tiny tables)."""
    sql = statement.compile(dialect=session.bind.dialect, compile_kwargs={"literal_binds": True})
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    rows = (await session.execute(text(f"EXPLAIN {sql}"))).scalars().all()
    await session.rollback()
    return "\n".join(rows)


async def test_the_partial_index_serves_the_filter_its_order_and_the_count(
    session: AsyncSession, overdue: dict[str, int]
) -> None:
    await session.execute(text("ANALYZE processes"))
    await session.commit()
    first = process_queries.page_statement(
        ProcessFilters(review_overdue=True), PageParams(50, None, None, False)
    )
    plan = await _plan(session, first)
    assert "ix_processes_review_due_at_id" in plan, plan
    assert "Sort" not in plan, plan
    count = await _plan(session, process_queries.OVERDUE_BY_CRITICALITY)
    assert "Index Only Scan using ix_processes_review_due_at_id" in count, count


# --- the gauge ----------------------------------------------------------------------


def _gauge() -> dict[str, float | None]:
    return {
        criticality: REGISTRY.get_sample_value(GAUGE, {"criticality": criticality})
        for criticality in ("low", "medium", "high", "critical")
    }


async def test_the_refresh_counts_overdue_processes_by_criticality(
    client: AsyncClient, headers: dict[str, str], session: AsyncSession, engine: AsyncEngine
) -> None:
    plans = [("critical", 10, 30), ("critical", 5, 6), ("critical", 30, 1), ("high", 1, 3)]
    ids = []
    for criticality, interval, age in plans:
        body = await _create(
            client, headers, criticality=criticality, review_interval_days=interval
        )
        await _age(session, body["id"], created=age)
        ids.append(body["id"])
    await _create(client, headers, criticality="low")
    await process_queries.refresh_review_gauge(engine)
    assert _gauge() == {"low": 0, "medium": 0, "high": 1, "critical": 2}

    await client.post(f"{URL}/{ids[0]}/review", headers=headers)
    await client.patch(f"{URL}/{ids[3]}", headers=headers, json={"criticality": "low"})
    await process_queries.refresh_review_gauge(engine)
    assert _gauge() == {"low": 1, "medium": 0, "high": 0, "critical": 1}


async def test_a_scrape_counts_at_most_once_a_minute(
    client_with: ClientFactory, headers: dict[str, str], session: AsyncSession, client: AsyncClient
) -> None:
    body = await _create(client, headers, criticality="critical", review_interval_days=7)
    await _age(session, body["id"], created=8)
    async with client_with() as fresh:
        with count_statements() as statements:
            scrapes = await asyncio.gather(*(fresh.get("/metrics") for _ in range(3)))
            scrapes.append(await fresh.get("/metrics"))
        counts = [s for s in statements if "count(*)" in s and "review_due_at" in s]
        assert len(counts) == 1
        for scrape in scrapes:
            samples = {
                sample.labels["criticality"]: sample.value
                for family in text_string_to_metric_families(scrape.text)
                if family.name == GAUGE
                for sample in family.samples
            }
            assert samples == {"low": 0, "medium": 0, "high": 0, "critical": 1}
