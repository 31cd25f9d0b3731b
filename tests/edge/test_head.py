"""HEAD: whatever GET answers on a path, without the content (RFC 9110, 9.3.2).

FastAPI routes only the methods a route declares, so the app answers HEAD itself: the
router sees GET, the client gets GET's status and headers and no body, and the log, the
metrics and the rate limiter see HEAD.
"""

from __future__ import annotations

from httpx import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from app.domains.process.models import Process
from tests.edge.conftest import LogLines
from tests.exchange.test_export import open_transactions
from tests.factories import Factory

API = "/api/v1"
SAME_HEADERS = ("content-type", "content-length", "etag", "cache-control", "x-content-type-options")


async def _process(factory: Factory) -> Process:
    process = Process(title="Calibrate the scales")
    factory.session.add(process)
    await factory.session.commit()
    return process


async def test_head_answers_what_get_does_without_a_body(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    process = await _process(factory)
    url = f"{API}/processes/{process.id}"

    get = await client.get(url, headers=factory.headers(user))
    head = await client.head(url, headers=factory.headers(user))

    assert get.status_code == head.status_code == 200
    assert get.content
    assert head.content == b""
    for name in SAME_HEADERS:
        assert head.headers.get(name) == get.headers.get(name), name
    assert head.headers["etag"] == f'W/"{process.version}"'


async def test_head_keeps_the_answers_of_a_get_that_fails(
    client: AsyncClient, factory: Factory
) -> None:
    reader = await factory.user(permissions=["processes:read"])
    stranger = await factory.user(permissions=[])
    process = await _process(factory)
    url = f"{API}/processes/{process.id}"

    cases = [
        (url, {}, 401),
        (url, factory.headers(stranger), 403),
        (f"{API}/processes/999999999", factory.headers(reader), 404),
        (f"{API}/processes/abc", factory.headers(reader), 422),
        (f"{API}/nowhere", {}, 404),
    ]
    for target, headers, status in cases:
        get = await client.get(target, headers=headers)
        head = await client.head(target, headers=headers)
        assert (get.status_code, head.status_code) == (status, status), target
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]


async def test_head_is_conditional_like_get(client: AsyncClient, factory: Factory) -> None:
    user = await factory.user(permissions=["processes:read"])
    process = await _process(factory)
    headers = {**factory.headers(user), "If-None-Match": f'W/"{process.version}"'}

    head = await client.head(f"{API}/processes/{process.id}", headers=headers)

    assert head.status_code == 304
    assert head.headers["etag"] == f'W/"{process.version}"'


async def test_head_where_no_get_is_405_and_allow_names_head_where_get_is(
    client: AsyncClient, factory: Factory
) -> None:
    token = await client.head(f"{API}/auth/token")
    assert token.status_code == 405
    assert token.headers["allow"] == "POST"
    assert token.content == b""

    user = await factory.user()
    me = await client.delete(f"{API}/users/me", headers=factory.headers(user))
    assert me.status_code == 405
    assert me.headers["allow"] == "GET, HEAD, PATCH"


async def test_head_of_an_export_sends_its_headers_only(
    client: AsyncClient, factory: Factory
) -> None:
    user = await factory.user(permissions=["processes:read"])
    for _ in range(3):
        await _process(factory)
    url = f"{API}/processes/export?format=ndjson"

    head = await client.head(url, headers=factory.headers(user))

    assert head.status_code == 200
    assert head.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in head.headers["content-disposition"]
    assert head.content == b""
    assert await open_transactions(factory.session) == 0  # its snapshot is gone already
    get = await client.get(url, headers=factory.headers(user))
    assert get.status_code == 200
    assert len(get.content.splitlines()) == 3


async def test_head_is_logged_and_counted_as_head(client: AsyncClient, log_lines: LogLines) -> None:
    assert (await client.head(f"{API}/health")).status_code == 200

    [line] = log_lines.access()
    assert (line["method"], line["route"], line["status"]) == ("HEAD", f"{API}/health", 200)
    metrics = (await client.get("/metrics")).text
    counted = [
        sample
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels["method"] == "HEAD"
    ]
    assert any(sample.labels["route"] == f"{API}/health" for sample in counted)


async def test_the_openapi_document_declares_no_head_operations(client: AsyncClient) -> None:
    paths = (await client.get(f"{API}/openapi.json")).json()["paths"]

    assert paths
    assert not [path for path, operations in paths.items() if "head" in operations]
