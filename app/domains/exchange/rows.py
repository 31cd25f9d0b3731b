"""An import's records as rows, decoded by column, and the plan that checks and writes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.database import MAX_BIGINT
from app.domains.exchange.collections import (
    LIST_SEPARATOR,
    Collection,
    Importing,
    LinkKind,
    Reference,
)
from app.domains.exchange.formats import ParsedFile
from app.domains.exchange.schemas import ExportFormat, ImportReport, RowError


@dataclass(frozen=True, slots=True)
class Ref:
    """A row named by id, by natural key, or both; `column`: where the file named it."""

    id: int | None
    key: str | None
    column: str


@dataclass(slots=True, eq=False)
class Row:
    """One record of the file and what writing it will do."""

    number: int
    file_id: int | None = None
    version: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    """The writable columns the record has, as read."""
    refs: dict[str, Ref | None] = field(default_factory=dict)
    links: dict[str, list[Ref]] = field(default_factory=dict)
    entity: Any = None
    """The existing row it updates; None: it creates one."""
    node: int = 0
    """The row's id: the existing one, the file's, or a negative stand-in until one is drawn."""
    resolved: dict[str, int | None] = field(default_factory=dict)
    """Reference column -> node."""
    values: dict[str, Any] = field(default_factory=dict)
    """Validated column values to write (references as nodes)."""
    link_ids: dict[str, list[int]] = field(default_factory=dict)
    changed: bool = False
    failed: bool = False
    faulty: set[str | None] = field(default_factory=set)
    """The columns already reported."""


class DecodeError(ValueError):
    pass


@dataclass(slots=True)
class Plan:
    collection: Collection
    file_format: ExportFormat
    read: int
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    current_links: dict[str, dict[int, set[int]]] = field(default_factory=dict)
    """Link field -> {existing row's id: its linked ids now}."""

    def fail(self, row: Row | None, column: str | None, message: str) -> None:
        if row is not None:
            row.failed = True
            row.faulty.add(column)
        self.errors.append(RowError(row=row.number if row else 0, field=column, message=message))

    @property
    def importing(self) -> Importing:
        assert self.collection.importing is not None
        return self.collection.importing

    def report(self, *, dry_run: bool) -> ImportReport:
        good = [row for row in self.rows if not row.failed]
        return ImportReport(
            rows=self.read,
            created=sum(row.entity is None for row in good),
            updated=sum(row.entity is not None and row.changed for row in good),
            unchanged=sum(row.entity is not None and not row.changed for row in good),
            errors=sorted(self.errors, key=lambda error: error.row),
            dry_run=dry_run,
        )


def writable(collection: Collection) -> dict[str, tuple[str, str | None]]:
    """{file column: (schema field, part of it)} of the plain columns an import writes."""
    importing = collection.importing
    assert importing is not None
    references = {reference.column for reference in collection.references}
    links = {link.field for link in collection.links}
    columns: dict[str, tuple[str, str | None]] = {}
    for name in (*importing.create.model_fields, *importing.update.model_fields):
        if name in importing.nested:
            for part, column in importing.nested[name].items():
                columns[column] = (name, part)
        elif name not in references and name not in links and name in collection.table.c:
            columns[name] = (name, None)
    return columns


def _link_columns(link: LinkKind, file_format: ExportFormat) -> list[str]:
    if file_format is ExportFormat.NDJSON:
        return [link.name]
    return [link.field, link.names, *([link.key_column] if link.key_column else [])]


def known_columns(collection: Collection, file_format: ExportFormat) -> set[str]:
    """Every column (NDJSON key) an import of `collection` understands."""
    exported = collection.csv_columns() if file_format is ExportFormat.CSV else None
    known = set(exported or collection.ndjson_keys())
    known.update(writable(collection), ("id", "version"))
    for reference in collection.references:
        known.update(filter(None, (reference.column, reference.key_column)))
    for link in collection.links:
        known.update(_link_columns(link, file_format))
    return known


def decode(checking: Plan, parsed: ParsedFile) -> None:
    """The file's records as rows, each cell read as its column's type."""
    collection, csv = checking.collection, checking.file_format is ExportFormat.CSV
    known = known_columns(collection, checking.file_format)
    unknown = [column for column in parsed.columns if column not in known]
    for column in unknown:
        checking.fail(None, column, f"is not a column of {collection.name}")
    if unknown:
        return
    columns = writable(collection)
    for record in parsed.records:
        row = Row(record.row)
        checking.rows.append(row)
        values = record.values
        try:
            row.file_id = _id(values.get("id"), csv)
        except DecodeError as error:
            checking.fail(row, "id", str(error))
        try:
            row.version = _id(values.get("version"), csv)
        except DecodeError as error:
            checking.fail(row, "version", str(error))
        for column in columns:
            if column in values:
                try:
                    row.fields[column] = _value(values[column], collection.python_type(column), csv)
                except DecodeError as error:
                    checking.fail(row, column, str(error))
        for reference in collection.references:
            try:
                _decode_reference(row, reference, values, csv)
            except DecodeError as error:
                checking.fail(row, reference.column, str(error))
        for link in collection.links:
            try:
                _decode_link(row, link, values, csv)
            except DecodeError as error:
                checking.fail(row, link.field if csv else link.name, str(error))


def _id(value: Any, csv: bool) -> int | None:
    if csv and isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if not value.isdigit():
            raise DecodeError("is not a whole number")
        value = int(value)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError("is not a whole number (a JSON integer)")
    if not 1 <= value <= MAX_BIGINT:
        raise DecodeError(f"is out of range (1 to {MAX_BIGINT})")
    return value


def _text(value: Any, csv: bool) -> str | None:
    if csv and isinstance(value, str):
        return value.strip() or None
    if value is None or isinstance(value, str):
        return value
    raise DecodeError("is not text")


def _value(value: Any, python_type: type, csv: bool) -> Any:
    """A writable cell: CSV text as the column's type (empty: null); NDJSON values as sent."""
    if not csv or not isinstance(value, str):
        return value
    if python_type is list:
        return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
    if not value.strip():
        return None
    if python_type is int:
        text = value.strip()
        if not text.lstrip("-").isdigit():
            raise DecodeError("is not a whole number")
        return int(text)
    if python_type is bool:
        text = value.strip().lower()
        if text not in {"true", "false"}:
            raise DecodeError("is not true or false")
        return text == "true"
    return value


def _decode_reference(row: Row, reference: Reference, values: Mapping[str, Any], csv: bool) -> None:
    key_column = reference.key_column
    if reference.column not in values and (key_column is None or key_column not in values):
        return
    target_id = _id(values.get(reference.column), csv)
    key = _text(values.get(key_column), csv) if key_column else None
    if target_id is None and key is None:
        row.refs[reference.column] = None
        return
    named = key_column if key is not None and key_column else reference.column
    row.refs[reference.column] = Ref(target_id, key, named)


def _decode_link(row: Row, link: LinkKind, values: Mapping[str, Any], csv: bool) -> None:
    if csv:
        key_column = link.key_column
        if link.field not in values and (key_column is None or key_column not in values):
            return
        ids = [_id(item, csv) for item in _list(values.get(link.field))]
        keys = _list(values.get(key_column)) if key_column else []
        if ids and len(ids) != len(keys):
            # A name holding the separator cannot be told apart: the ids alone count.
            keys = []
        if not keys:
            row.links[link.field] = [Ref(item, None, link.field) for item in ids]
        elif not ids:
            row.links[link.field] = [Ref(None, key, str(key_column)) for key in keys]
        else:
            row.links[link.field] = [
                Ref(item, key, link.field) for item, key in zip(ids, keys, strict=True)
            ]
        return
    if link.name not in values:
        return
    elements = values[link.name]
    if not isinstance(elements, list):
        raise DecodeError("is not a list (an empty list removes every link)")
    refs = []
    key = link.key
    for element in elements:
        if not isinstance(element, dict):
            element = {"id": element}
        target_id = _id(element.get("id"), csv)
        name = _text(element.get(key.column), csv) if key else None
        if target_id is None and name is None:
            given = f"its id or {key.column}" if key else "its id"
            raise DecodeError(f"has an element without {given}")
        refs.append(Ref(target_id, name, link.name))
    row.links[link.field] = refs


def _list(value: Any) -> list[str]:
    if not value or not isinstance(value, str):
        return []
    return [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
