"""An import's body, read within the import's own limits, and its `dry_run` switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from app.core.config import Settings
from app.domains.exchange.exceptions import ImportTooLarge, UnsupportedImportType
from app.domains.exchange.formats import FORMATS
from app.domains.exchange.schemas import ExportFormat


@dataclass(frozen=True, slots=True)
class ImportBody:
    file_format: ExportFormat
    data: bytes


async def import_body(request: Request) -> ImportBody:
    """The body of an import: CSV or NDJSON, at most IMPORT_MAX_BYTES (else 413 naming both)."""
    settings: Settings = request.state.settings
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    file_format = FORMATS.get(media_type)
    if file_format is None:
        raise UnsupportedImportType(media_type)
    limit = settings.import_max_bytes

    def too_large(over: str) -> ImportTooLarge:
        return ImportTooLarge(max_rows=settings.import_max_rows, max_bytes=limit, over=over)

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(f"{int(declared)} bytes")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large(f"more than {limit} bytes")
    return ImportBody(file_format, bytes(data))


ImportBodyDep = Annotated[ImportBody, Depends(import_body)]
DryRun = Annotated[
    bool, Query(description="`true`: check every row and answer the report; write nothing.")
]
