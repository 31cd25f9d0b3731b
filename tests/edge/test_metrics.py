"""`GET /metrics`: names and labels after known traffic, bounded cardinality, optional token."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

from fastapi.routing import iter_route_contexts
from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app import __version__
from app.core.config import Settings
from app.main import create_app
from tests.auth.helpers import login
from tests.conftest import ClientFactory
from tests.factories import Factory
from tests.statements import count_redis_commands, count_statements

HISTOGRAM_BUCKETS = [
    "0.005",
    "0.01",
    "0.025",
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1.0",
    "2.5",
    "5.0",
    "10.0",
    "+Inf",
]


async def _scrape(client: AsyncClient, **headers: str) -> dict[str, list[Sample]]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matching = [s.value for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    return sum(matching)


async def test_http_metrics_count_known_traffic_by_route_template(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["users:read"])
    before = await _scrape(client)
    for _ in range(3):
        assert (
            await client.get(f"/api/v1/users/{user.id}", headers=factory.headers(user))
        ).status_code == 200
    await client.get("/api/v1/users/999999", headers=factory.headers(user))
    after = await _scrape(client)

    route = "/api/v1/users/{user_id}"
    ok = {"method": "GET", "route": route, "status": "200"}
    assert (
        _value(after, "http_requests_total", **ok) - _value(before, "http_requests_total", **ok)
        == 3
    )
    missing = {"method": "GET", "route": route, "status": "404"}
    assert (
        _value(after, "http_requests_total", **missing)
        - _value(before, "http_requests_total", **missing)
        == 1
    )
    counted = _value(after, "http_request_duration_seconds_count", method="GET", route=route)
    assert (
        counted - _value(before, "http_request_duration_seconds_count", method="GET", route=route)
        == 4
    )
    buckets = [
        s.labels["le"]
        for s in after["http_request_duration_seconds_bucket"]
        if s.labels["route"] == route and s.labels["method"] == "GET"
    ]
    assert buckets == HISTOGRAM_BUCKETS
    assert not any(
        "/api/v1/users/" + str(user.id) in s.labels.get("route", "")
        for s in after["http_requests_total"]
    )


async def test_in_progress_is_back_to_zero_after_the_requests(client: AsyncClient) -> None:
    await client.get("/api/v1/health")
    samples = await _scrape(client)
    health = {"method": "GET", "route": "/api/v1/health"}
    assert _value(samples, "http_requests_in_progress", **health) == 0
    scrape = {"method": "GET", "route": "/metrics"}
    assert _value(samples, "http_requests_in_progress", **scrape) == 1


async def test_every_documented_metric_is_exposed(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user()
    await login(client, user.email)
    await login(client, user.email, "not the password at all")
    samples = await _scrape(client)

    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_progress",
        "db_pool_size",
        "db_pool_max_overflow",
        "db_pool_checked_out",
        "db_pool_overflow",
        "db_query_duration_seconds_bucket",
        "app_dependency_up",
        "process_atlas_worker_resident_memory_bytes",
        "process_atlas_worker_cpu_seconds_total",
        "process_atlas_worker_open_fds",
        "process_atlas_worker_start_time_seconds",
    ):
        assert name in samples, name
    assert _value(samples, "auth_events_total", event="login_success") >= 1
    assert _value(samples, "auth_events_total", event="login_failure") >= 1
    assert _value(samples, "audit_events_total") >= 0
    assert _value(samples, "app_info", version=__version__) == 1
    assert _value(samples, "db_pool_size") == 5
    assert _value(samples, "db_pool_max_overflow") == 10
    assert _value(samples, "db_query_duration_seconds_count", operation="select") > 0
    assert _value(samples, "app_dependency_up", dependency="database") == 1
    assert _value(samples, "app_dependency_up", dependency="redis") == 1
    assert "http_requests_created" not in samples


async def test_rate_limit_metrics_are_exposed(client_with: ClientFactory) -> None:
    async with client_with(rate_limit_default="1/hour") as client:
        await client.get("/api/v1/openapi.json")
        await client.get("/api/v1/openapi.json")
        samples = await _scrape(client)
    assert _value(samples, "rate_limited_requests_total", group="default") >= 1
    assert "rate_limiter_errors_total" in samples
    assert _value(samples, "http_requests_total", route="/api/v1/openapi.json", status="429") >= 1


async def test_random_paths_share_one_route_label(settings: Settings, client: AsyncClient) -> None:
    before = await _scrape(client)
    for _ in range(50):
        path = f"/{uuid.uuid4().hex}/{uuid.uuid4().hex[:6]}"
        assert (await client.get(path)).status_code == 404
    await client.request("BREW", "/coffee")
    samples = await _scrape(client)

    templates = {
        context.path_format for context in iter_route_contexts(create_app(settings).routes)
    }
    # Only the series this test moved: the registry is per process, and other tests' apps
    # (with routes of their own) counted into it before.
    counted = {tuple(sorted(s.labels.items())): s.value for s in before["http_requests_total"]}
    moved = [
        s
        for s in samples["http_requests_total"]
        if s.value > counted.get(tuple(sorted(s.labels.items())), 0)
    ]
    routes = {s.labels["route"] for s in moved}
    methods = {s.labels["method"] for s in moved}
    assert routes <= templates | {"unmatched"}
    unmatched = {"route": "unmatched", "status": "404"}
    assert (
        _value(samples, "http_requests_total", **unmatched)
        - _value(before, "http_requests_total", **unmatched)
        == 51
    )
    assert "BREW" not in methods
    assert _value(samples, "http_requests_total", method="other", route="unmatched") >= 1


async def test_metrics_token_is_required_when_set(client_with: ClientFactory) -> None:
    async with client_with(metrics_token="scrape-secret") as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        samples = await _scrape(client, authorization="Bearer scrape-secret")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert "http_requests_total" in samples


async def test_dependency_gauge_reports_a_redis_outage(client_with: ClientFactory) -> None:
    async with client_with(redis_url="redis://127.0.0.1:1/0", ready_timeout=1) as client:
        samples = await _scrape(client)
    assert _value(samples, "app_dependency_up", dependency="redis") == 0
    assert _value(samples, "app_dependency_up", dependency="database") == 1


async def test_metrics_can_be_switched_off(client_with: ClientFactory) -> None:
    async with client_with(metrics_enabled=False) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404


async def test_scrapes_share_one_dependency_probe(client_with: ClientFactory) -> None:
    async with client_with() as client:
        with count_statements() as statements, count_redis_commands() as commands:
            await asyncio.gather(*(_scrape(client) for _ in range(5)))
            for _ in range(5):
                samples = await _scrape(client)
    # The probe's SELECT 1, then the overdue-review count (at most once a minute, shared too).
    assert len(statements) == 2
    assert statements[0] == "SELECT 1"
    assert commands.count("PING") == 1
    assert _value(samples, "app_dependency_up", dependency="database") == 1
    assert _value(samples, "app_dependency_up", dependency="redis") == 1


async def test_worker_gauges_describe_this_process_under_its_pid(client: AsyncClient) -> None:
    samples = await _scrape(client)
    pid = {"pid": str(os.getpid())}
    resident = _resident_bytes()

    assert {s.labels["pid"] for s in samples["process_atlas_worker_resident_memory_bytes"]} == {
        pid["pid"]
    }
    sampled = _value(samples, "process_atlas_worker_resident_memory_bytes", **pid)
    assert resident / 2 < sampled < resident * 2
    assert (
        0 < _value(samples, "process_atlas_worker_cpu_seconds_total", **pid) <= time.process_time()
    )
    assert _value(samples, "process_atlas_worker_open_fds", **pid) >= 3
    started = _value(samples, "process_atlas_worker_start_time_seconds", **pid)
    assert started <= time.time()
    assert abs(started - _start_time(os.getpid())) < 1


async def test_worker_gauges_follow_the_process_between_scrapes(client: AsyncClient) -> None:
    pid = {"pid": str(os.getpid())}
    before = _value(await _scrape(client), "process_atlas_worker_open_fds", **pid)
    pipes = [os.pipe() for _ in range(50)]
    try:
        for _ in range(100):
            samples = await _scrape(client)
            if _value(samples, "process_atlas_worker_open_fds", **pid) >= before + 90:
                break
            await asyncio.sleep(0.1)
        assert _value(samples, "process_atlas_worker_open_fds", **pid) >= before + 90
    finally:
        for reader, writer in pipes:
            os.close(reader)
            os.close(writer)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _start_time(pid: int) -> float:
    """When the process started, in seconds since the epoch, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        ticks = int(stat.read().rpartition(")")[2].split()[19])
    with open("/proc/stat") as system:
        boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    return boot + ticks / os.sysconf("SC_CLK_TCK")
