"""A client generated from our OpenAPI document by openapi-python-client works against the server.

The generator must accept the document without a warning, and the client must sign in,
write, page and read with it; responses must carry no field the document leaves out.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.factories import PASSWORD, Factory
from tests.serving import Server

pytestmark = pytest.mark.slow

PACKAGE = "process_atlas_client"


@pytest.fixture(scope="module")
def generated(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The client package, generated from the running server's document into a tmp dir."""
    root = tmp_path_factory.mktemp("generated-client")
    config = root / "config.yaml"
    # The imports read CSV or NDJSON, which the generator sends as bytes once told so.
    config.write_text(
        "post_hooks: []\ncontent_type_overrides:\n"
        "  text/csv: application/octet-stream\n  application/x-ndjson: application/octet-stream\n"
    )
    result = subprocess.run(
        [
            Path(sys.executable).with_name("openapi-python-client"),
            *("generate", "--url", f"{server.url}/api/v1/openapi.json"),
            *("--meta", "none", "--config", str(config), "--fail-on-warning"),
            *("--output-path", str(root / PACKAGE)),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def _model(name: str) -> Any:
    return getattr(importlib.import_module(f"{PACKAGE}.models"), name)


def _undocumented(value: Any, where: str = "") -> list[str]:
    """Fields the server sent that the document does not describe, wherever they are."""
    if isinstance(value, list):
        return [
            found for i, item in enumerate(value) for found in _undocumented(item, f"{where}[{i}]")
        ]
    if not attrs.has(type(value)):
        return []
    found = [f"{where}.{key}" for key in getattr(value, "additional_properties", {})]
    for field in attrs.fields(type(value)):
        if field.name != "additional_properties":
            found += _undocumented(getattr(value, field.name), f"{where}.{field.name}")
    return found


async def _parsed(call: Any, status: int, **arguments: Any) -> Any:
    response = await call.asyncio_detailed(**arguments)
    assert response.status_code == status, response.content
    assert _undocumented(response.parsed) == []
    return response.parsed


async def test_a_generated_client_signs_in_writes_pages_and_reads(
    generated: Any, server: Server, factory: Factory
) -> None:
    user = await factory.user(superuser=True)
    anonymous = generated.Client(base_url=server.url, raise_on_unexpected_status=True)
    tokens = await _parsed(
        _api("auth.auth_token"),
        200,
        client=anonymous,
        body=_model("BodyAuthToken")(username=user.email, password=PASSWORD),
    )
    client = generated.AuthenticatedClient(
        base_url=server.url, token=tokens.access_token, raise_on_unexpected_status=True
    )

    department = await _parsed(
        _api("departments.departments_create"),
        201,
        client=client,
        body=_model("DepartmentCreate")(name="Finance"),
    )
    created = [
        await _parsed(
            _api("processes.processes_create"),
            201,
            client=client,
            body=_model("ProcessCreate")(title=title, department_ids=[department.id]),
        )
        for title in ("Close the books", "Pay suppliers", "Run payroll")
    ]

    seen: list[int] = []
    cursor = None
    for _ in range(len(created)):
        page = await _parsed(
            _api("processes.processes_list"),
            200,
            client=client,
            department_id=department.id,
            limit=2,
            **({"cursor": cursor} if cursor else {}),
        )
        seen += [process.id for process in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert sorted(seen) == sorted(process.id for process in created)

    read = await _parsed(
        _api("processes.processes_get"), 200, client=client, process_id=created[1].id
    )
    assert read.title == "Pay suppliers"
    assert [(summary.id, summary.name) for summary in read.departments] == [
        (department.id, "Finance")
    ]
    assert read.created_by.id == user.id
