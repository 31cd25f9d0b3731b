"""The read side of exchange: exports streamed from one snapshot, and the lookups imports need.

An export runs on a connection of its own, not the request's session (that one commits
before a streamed body is sent), in one REPEATABLE READ READ ONLY transaction: every batch
sees the same snapshot, however long the download takes. It walks the filtered rows in id
order, `BATCH_ROWS` at a time (the list's filters, the primary key as the keyset), so memory
holds one batch whatever the size of the set.

One statement per batch reads the rows, their natural keys and their links, and PostgreSQL
renders them as the file has them: CSV cells as text, an NDJSON line as one JSON document.
Python only joins them (docs/benchmarks.md, "Export and import").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from functools import cache
from typing import Any

import anyio
from sqlalchemy import (
    ARRAY,
    CTE,
    JSON,
    BigInteger,
    ColumnElement,
    FromClause,
    Insert,
    Select,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.errors import ServiceUnavailable
from app.domains.exchange.collections import LIST_SEPARATOR, Collection, LinkKind, NaturalKey
from app.domains.exchange.formats import csv_lines
from app.domains.exchange.schemas import ExportFormat

BATCH_ROWS = 1000
# Exports this worker is streaming now (one event loop per worker: no lock needed).
_streaming = 0
EMPTY_JSON_ARRAY: ColumnElement[Any] = literal_column("'[]'::json")


def _batch(collection: Collection, filters: Any, after: int) -> CTE:
    """The next batch: the filtered rows after `after`, in id order, natural keys named."""
    table = collection.table
    joined: Any = table
    named: list[ColumnElement[Any]] = []
    for reference in collection.references:
        key = reference.key
        if key is None or reference.key_column is None:
            continue
        target = reference.target.__table__.alias(f"{reference.column}_target")
        joined = joined.outerjoin(target, target.c.id == table.c[reference.column])
        named.append(target.c[key.column].label(reference.key_column))
    return (
        select(*collection.columns(), *named)
        .select_from(joined)
        .where(*collection.where(filters, after))
        .order_by(table.c.id)
        .limit(BATCH_ROWS)
        .cte("batch")
    )


def _links(link: LinkKind, batch: CTE, file_format: ExportFormat) -> FromClause:
    """One kind of link of the batch's rows, aggregated per row as the file shows it."""
    target = link.target.__table__
    owner = link.table.c[link.owner]
    if file_format is ExportFormat.CSV:
        separator = aggregate_order_by(literal(LIST_SEPARATOR), target.c.id)
        columns = [
            func.string_agg(cast(target.c.id, Text), separator).label("ids"),
            func.string_agg(target.c.name, separator).label("names"),
        ]
    else:
        summary = func.json_build_object("id", target.c.id, "name", target.c.name)
        columns = [func.json_agg(aggregate_order_by(summary, target.c.id)).label("summaries")]
    return (
        select(owner.label("owner"), *columns)
        .select_from(link.table.join(target, target.c.id == link.table.c[link.column]))
        .where(owner.in_(select(batch.c.id)))
        .group_by(owner)
        .subquery(f"{link.name}_links")
    )


def _text(collection: Collection, column: ColumnElement[Any], name: str) -> ColumnElement[Any]:
    """A CSV cell as PostgreSQL writes it: ISO 8601 timestamps, true/false, `;`-joined lists."""
    if name not in collection.table.c:
        return column  # a natural key, or the ids and names of links: text already
    if collection.table.c[name].type.python_type is datetime:
        return func.to_json(column).op("#>>")(literal_column("'{}'"))
    python_type = collection.python_type(name)
    if python_type is list:
        return func.array_to_string(column, LIST_SEPARATOR)
    return column if python_type is str else cast(column, Text)


def batch_statement(
    collection: Collection, filters: Any, after: int, file_format: ExportFormat
) -> Select[Any]:
    """The rows after `after`, ready to write: (id, CSV cells...) or (id, NDJSON document)."""
    batch = _batch(collection, filters, after)
    joined: Any = batch
    cells: dict[str, ColumnElement[Any]] = {column.name: column for column in batch.c}
    for link in collection.links:
        links = _links(link, batch, file_format)
        joined = joined.outerjoin(links, links.c.owner == batch.c.id)
        if file_format is ExportFormat.CSV:
            cells[link.field], cells[link.names] = links.c.ids, links.c.names
        else:
            cells[link.name] = func.coalesce(links.c.summaries, EMPTY_JSON_ARRAY)
    if file_format is ExportFormat.CSV:
        rendered = [
            _text(collection, cells[name], name).label(name) for name in collection.csv_columns()
        ]
    else:
        pairs = [item for key in collection.ndjson_keys() for item in (literal(key), cells[key])]
        rendered = [cast(type_coerce(func.json_build_object(*pairs), JSON), Text).label("document")]
    return select(batch.c.id, *rendered).select_from(joined).order_by(batch.c.id)


async def export_file(
    engine: AsyncEngine,
    *,
    collection: Collection,
    filters: Any,
    file_format: ExportFormat,
    at_most: int = 4,
) -> AsyncGenerator[bytes]:
    """The whole filtered set as a file, in chunks; the first has the header and first batch.

    503 when this worker already streams `at_most` exports (EXPORT_MAX_CONCURRENT): each
    holds a pooled connection until its download ends.
    """
    global _streaming
    if _streaming >= at_most:
        raise ServiceUnavailable(
            f"{at_most} exports are already streaming from this server; retry shortly."
        )
    _streaming += 1
    csv = file_format is ExportFormat.CSV
    try:
        connection = await engine.connect()
    except BaseException:
        _streaming -= 1
        raise
    try:
        await connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        await connection.begin()
        # Compiling each batch's plan to machine code costs far more than running it.
        await connection.execute(select(func.set_config("jit", "off", True)))
        header = csv_lines([collection.csv_columns()]) if csv else b""
        after = 0
        while True:
            statement = batch_statement(collection, filters, after, file_format)
            rows = (await connection.execute(statement)).all()
            if csv:
                chunk = csv_lines(row[1:] for row in rows)
            else:
                chunk = "".join(f"{row[1]}\n" for row in rows).encode()
            yield header + chunk
            header = b""
            if len(rows) < BATCH_ROWS:
                return
            after = rows[-1][0]
    finally:
        _streaming -= 1
        # Also when the client went away and the stream is cancelled: the connection goes back.
        with anyio.CancelScope(shield=True):
            await connection.close()


# --- what imports read --------------------------------------------------------------------


async def matching_rows(
    session: AsyncSession,
    collection: Collection,
    *,
    ids: Iterable[int],
    keys: Iterable[str],
    for_update: bool,
) -> list[Any]:
    """The rows with one of `ids`, or (folded) one of the natural `keys`; locked when writing."""
    model, key = collection.model, collection.key
    conditions: list[ColumnElement[bool]] = []
    wanted_ids = sorted(set(ids))
    if wanted_ids:
        conditions.append(model.id.in_(wanted_ids))
    wanted_keys = sorted(set(keys))
    if key is not None and wanted_keys:
        conditions.append(key.of(model).in_(wanted_keys))
    if not conditions:
        return []
    statement = select(model).where(or_(*conditions)).order_by(model.id)
    if for_update:
        statement = statement.with_for_update(of=model)
    return list((await session.scalars(statement)).all())


async def known(
    session: AsyncSession,
    target: Any,
    *,
    key: NaturalKey | None,
    ids: Iterable[int],
    keys: Iterable[str],
) -> list[tuple[int, str | None]]:
    """(id, folded natural key) of the rows of `target` named by one of `ids` or `keys`."""
    wanted_ids, wanted_keys = sorted(set(ids)), sorted(set(keys))
    conditions: list[ColumnElement[bool]] = []
    if wanted_ids:
        conditions.append(target.id.in_(wanted_ids))
    if key is not None and wanted_keys:
        conditions.append(key.of(target).in_(wanted_keys))
    if not conditions:
        return []
    named = key.of(target) if key is not None else literal(None)
    rows = await session.execute(select(target.id, named).where(or_(*conditions)))
    return [(row[0], row[1]) for row in rows]


async def tree(session: AsyncSession, model: Any) -> dict[int, int | None]:
    """{id: parent_id} of a whole hierarchy (departments, locations: small tables)."""
    rows = await session.execute(select(model.id, model.parent_id))
    return {row[0]: row[1] for row in rows}


async def holders(
    session: AsyncSession, model: Any, key: NaturalKey, values: Iterable[str]
) -> list[tuple[int, str]]:
    """(id, folded key) of the rows whose natural key is one of `values` (folded)."""
    wanted = sorted(set(values))
    if not wanted:
        return []
    rows = await session.execute(select(model.id, key.of(model)).where(key.of(model).in_(wanted)))
    return [(row[0], row[1]) for row in rows]


async def siblings_named(
    session: AsyncSession, model: Any, names: Iterable[str]
) -> list[tuple[int, int | None, str]]:
    """(id, parent_id, lower(name)) of the rows named one of `names` (lower-cased)."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    lowered = func.lower(model.name)
    rows = await session.execute(
        select(model.id, model.parent_id, lowered).where(lowered.in_(wanted))
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def current_links(
    session: AsyncSession, link: LinkKind, owners: Iterable[int]
) -> dict[int, set[int]]:
    """{owner id: linked ids} of one kind of link, for `owners`."""
    wanted = sorted(set(owners))
    found: dict[int, set[int]] = defaultdict(set)
    if not wanted:
        return found
    owner, linked = link.table.c[link.owner], link.table.c[link.column]
    for owner_id, linked_id in await session.execute(
        select(owner, linked).where(owner.in_(wanted))
    ):
        found[owner_id].add(linked_id)
    return found


@cache
def insert_links(link: LinkKind) -> Insert:
    """Insert the (`owners[i]`, `linked[i]`) pairs of one kind of link: one statement, any count."""
    pairs = (
        func.unnest(
            bindparam("owners", type_=ARRAY(BigInteger)),
            bindparam("linked", type_=ARRAY(BigInteger)),
        )
        .table_valued("owner", "linked")
        .render_derived()
    )
    return insert(link.table).from_select(
        [link.owner, link.column], select(pairs.c.owner, pairs.c.linked)
    )


def link_pairs(link: LinkKind, pairs: Iterable[tuple[int, int]]) -> ColumnElement[bool]:
    """The link rows among (owner id, linked id) `pairs`."""
    return tuple_(link.table.c[link.owner], link.table.c[link.column]).in_(list(pairs))
