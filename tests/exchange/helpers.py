"""Reading exported files and sending imports, for the exchange tests."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from httpx import AsyncClient, Response

API = "/api/v1"
CSV = "text/csv"
NDJSON = "application/x-ndjson"


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def ndjson_rows(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def rows_of(response: Response) -> list[dict[str, Any]]:
    """The records of an export, whichever its format."""
    if response.headers["content-type"].startswith(CSV):
        return list(csv_rows(response.text))
    return ndjson_rows(response.text)


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as a CSV file with a header of every key the rows have, in order of appearance."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def to_ndjson(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


async def export(
    client: AsyncClient, headers: dict[str, str], collection: str, **params: Any
) -> Response:
    response = await client.get(f"{API}/{collection}/export", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response


async def send_import(
    client: AsyncClient,
    headers: dict[str, str],
    collection: str,
    body: str | bytes,
    *,
    media_type: str = CSV,
    dry_run: bool = False,
) -> Response:
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(
        f"{API}/{collection}/import",
        headers={**headers, "Content-Type": media_type},
        params=params,
        content=body,
    )
