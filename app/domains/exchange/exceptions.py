from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.constraints import Constraints
from app.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed


class ImportRefused(ValidationFailed):
    """A real import with at least one bad row: nothing is written; the report names them."""

    def __init__(self, report: Mapping[str, Any]) -> None:
        bad = len({error["row"] for error in report["errors"]})
        super().__init__(
            f"{bad} of {report['rows']} rows cannot be imported; nothing was written. "
            "See `report.errors`.",
            extra={"report": dict(report)},
        )


class ImportTooLarge(PayloadTooLarge):
    """An import over either limit; the answer names both."""

    def __init__(self, *, max_rows: int, max_bytes: int, over: str) -> None:
        super().__init__(
            f"An import takes at most {max_rows} rows (IMPORT_MAX_ROWS) and {max_bytes} bytes "
            f"(IMPORT_MAX_BYTES); this one has {over}. Split it into several imports.",
            extra={"max_rows": max_rows, "max_bytes": max_bytes},
        )


class UnsupportedImportType(UnsupportedMediaType):
    def __init__(self, received: str) -> None:
        super().__init__(
            f"An import is CSV (Content-Type: text/csv) or NDJSON "
            f"(Content-Type: application/x-ndjson), not {received or 'a body without a type'}."
        )


# Exchange writes through the other domains' tables: their constraints name their errors.
CONSTRAINTS: Constraints = {}
