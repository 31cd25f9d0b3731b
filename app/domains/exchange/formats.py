"""CSV and NDJSON: writing rows as exports do, reading records as imports do."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from app.domains.exchange.schemas import ExportFormat, RowError

MEDIA_TYPES = {ExportFormat.CSV: "text/csv", ExportFormat.NDJSON: "application/x-ndjson"}
CONTENT_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
}
FORMATS = {media_type: file_format for file_format, media_type in MEDIA_TYPES.items()}


def csv_lines(rows: Iterable[Sequence[str | None]]) -> bytes:
    """Rows of text cells as CSV (RFC 4180 quoting, CRLF line ends; None: an empty cell)."""
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


@dataclass(frozen=True, slots=True)
class Record:
    """One row of an import as read: CSV text per column, or the values of a JSON object."""

    row: int
    values: dict[str, Any]


@dataclass(slots=True)
class ParsedFile:
    records: list[Record]
    """The rows that could be read (a malformed one is only in `errors`)."""
    errors: list[RowError]
    columns: list[str]
    """CSV: the header. NDJSON: every key some record has."""
    rows: int = 0
    too_many: bool = False


def parse(body: bytes, file_format: ExportFormat, *, max_rows: int) -> ParsedFile:
    """The records of an import body; `too_many` once it holds more than `max_rows`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        problem = RowError(row=0, field=None, message=f"The body is not UTF-8 text ({error}).")
        return ParsedFile([], [problem], [])
    if file_format is ExportFormat.CSV:
        return _parse_csv(text, max_rows)
    return _parse_ndjson(text, max_rows)


def _parse_csv(text: str, max_rows: int) -> ParsedFile:
    reader = csv.reader(io.StringIO(text, newline=""))
    parsed = ParsedFile([], [], [])
    try:
        header = next(reader, None)
        if header is None:
            return parsed
        parsed.columns = [name.strip() for name in header]
        repeated = sorted({name for name in parsed.columns if parsed.columns.count(name) > 1})
        for name in repeated:
            parsed.errors.append(RowError(row=0, field=name, message="appears twice in the header"))
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            parsed.rows += 1
            if parsed.rows > max_rows:
                parsed.too_many = True
                break
            if len(cells) != len(parsed.columns):
                message = f"has {len(cells)} cells; the header has {len(parsed.columns)}"
                parsed.errors.append(RowError(row=parsed.rows, field=None, message=message))
                continue
            record = dict(zip(parsed.columns, cells, strict=True))
            parsed.records.append(Record(parsed.rows, record))
    except csv.Error as error:
        message = f"is not valid CSV: {error}"
        parsed.errors.append(RowError(row=parsed.rows + 1, field=None, message=message))
    return parsed


def _parse_ndjson(text: str, max_rows: int) -> ParsedFile:
    parsed = ParsedFile([], [], [])
    keys: dict[str, None] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parsed.rows += 1
        if parsed.rows > max_rows:
            parsed.too_many = True
            break
        try:
            document = json.loads(line)
        except ValueError as error:
            message = f"is not JSON: {error}"
            parsed.errors.append(RowError(row=parsed.rows, field=None, message=message))
            continue
        if not isinstance(document, dict):
            message = "is not a JSON object"
            parsed.errors.append(RowError(row=parsed.rows, field=None, message=message))
            continue
        keys.update(dict.fromkeys(document))
        parsed.records.append(Record(parsed.rows, document))
    parsed.columns = list(keys)
    return parsed
