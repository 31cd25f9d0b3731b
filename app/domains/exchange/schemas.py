from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


class RowError(BaseModel):
    """Why one row of an import cannot be written."""

    row: int = Field(
        description="The record's number: 1 is the first row after the CSV header, or the "
        "first line of NDJSON; 0 is the file as a whole (its header, its encoding)."
    )
    field: str | None = Field(description="The column (or NDJSON key) at fault, if one is.")
    message: str


class ImportReport(BaseModel):
    """What an import did, or (dry run, refused import) what it would have done."""

    rows: int = Field(description="Rows read.")
    created: int = Field(description="Rows that create an entity.")
    updated: int = Field(description="Rows that change an existing entity.")
    unchanged: int = Field(description="Rows that match an existing entity and change nothing.")
    errors: list[RowError] = Field(description="Every row that cannot be written, and why.")
    dry_run: bool = Field(description="True: validated only, nothing was written.")
