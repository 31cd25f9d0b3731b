"""Imports: a whole file checked first, then written in the request's one transaction, or nothing.

The write side of exchange. An import takes a transaction-scoped advisory lock per
collection (`import:<collection>`, and the tree lock of departments or locations), so two
imports of one collection run one after the other and the second sees what the first
wrote. Rows are written in bulk (one INSERT per thousand rows; the links of each kind in
one `INSERT ... SELECT FROM unnest(...)`), not through each domain's `create` and `update`:
the rules those enforce are checked for the whole file first (`planning.py`, `rules.py`),
with the same schemas; a rule added to a domain's service belongs there too. Each entity
written gets its own audit event,
as the API writes it (action `create` or `update`, the domain's audited fields, the links'
`added`/`removed`), all carrying the import's request id.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.constraints import constraint_error
from app.core.database import after_commit
from app.core.trees import lock_tree
from app.domains.audit import service as audit_service
from app.domains.auth.context import AuthContext
from app.domains.auth.principal import Principal
from app.domains.exchange import planning
from app.domains.exchange import queries as exchange_queries
from app.domains.exchange.collections import Collection
from app.domains.exchange.exceptions import ImportRefused, ImportTooLarge
from app.domains.exchange.formats import parse
from app.domains.exchange.rows import Plan, Row
from app.domains.exchange.schemas import ExportFormat, ImportReport

# How long an import waits for another import of the same collection to finish.
LOCK_WAIT = "60s"
# Link rows written by one statement: each stays far within the statement timeout.
PAIRS_PER_STATEMENT = 20_000

# Moves the id sequence past the largest id a file gives, before those rows are inserted,
# so that rows the API creates meanwhile draw ids above them.
SKIP_GIVEN_IDS = text(
    "SELECT setval(s, GREATEST(:top, COALESCE(pg_sequence_last_value(s::regclass), 0))) "
    "FROM pg_get_serial_sequence(:table, 'id') AS s"
)
DRAW_IDS = text(
    "SELECT nextval(s) FROM pg_get_serial_sequence(:table, 'id') AS s, generate_series(1, :n)"
)


async def import_file(
    session: AsyncSession,
    *,
    collection: Collection,
    body: bytes,
    file_format: ExportFormat,
    dry_run: bool,
    actor: Principal,
    auth: AuthContext,
) -> ImportReport:
    """Check every row; unless `dry_run`, write them all or (ImportRefused) none."""
    settings = auth.settings
    parsed = parse(body, file_format, max_rows=settings.import_max_rows)
    if parsed.too_many:
        raise ImportTooLarge(
            max_rows=settings.import_max_rows,
            max_bytes=settings.import_max_bytes,
            over=f"more than {settings.import_max_rows} rows",
        )
    if not dry_run:
        await _lock(session, collection)
    checked = await planning.plan(
        session,
        collection=collection,
        parsed=parsed,
        file_format=file_format,
        actor=actor,
        for_update=not dry_run,
    )
    report = checked.report(dry_run=dry_run)
    if dry_run:
        return report
    if report.errors:
        raise ImportRefused(report.model_dump(mode="json"))
    await _write(session, checked, actor=actor, auth=auth)
    return report


async def _lock(session: AsyncSession, collection: Collection) -> None:
    """Queue behind another import of the collection (and, for a tree, its other writers)."""
    previous = await session.scalar(select(func.current_setting("statement_timeout")))
    await session.execute(select(func.set_config("statement_timeout", LOCK_WAIT, True)))
    key = func.hashtext(f"import:{collection.name}")
    await session.execute(select(func.pg_advisory_xact_lock(key)))
    assert collection.importing is not None
    if collection.importing.tree:
        await lock_tree(session, collection.model)
    await session.execute(select(func.set_config("statement_timeout", previous, True)))


async def _write(
    session: AsyncSession, checked: Plan, *, actor: Principal, auth: AuthContext
) -> None:
    collection, importing = checked.collection, checked.importing
    new = [row for row in checked.rows if row.entity is None]
    changed = [row for row in checked.rows if row.entity is not None and row.changed]
    ids = await _ids(session, collection, new)
    for row in checked.rows:  # from now on, every row and reference has its real id
        row.node = ids.get(row.node, row.node)
        for name in row.resolved:
            if row.values.get(name) is not None:
                row.values[name] = ids.get(row.values[name], row.values[name])
    if importing.tree:
        new = _parents_first(new)
    inserted = [{**row.values, "id": row.node, "created_by_id": actor.user_id} for row in new]
    fields = importing.audited.fields
    changes: dict[int, dict[str, Any]] = {}
    try:
        if inserted:
            await session.execute(insert(collection.table), inserted)
        for values in inserted:
            namespace = SimpleNamespace(**{**dict.fromkeys(fields), **values})
            changes[values["id"]] = audit_service.created(namespace, fields)
        for row in changed:
            changes[row.node] = audit_service.apply(row.entity, row.values, fields)
            row.entity.updated_at = func.now()  # a change of links alone is a new version too
        await session.flush()
        links_changed = await _write_links(session, checked, [*new, *changed])
    except IntegrityError as error:
        mapped = constraint_error(error)
        if mapped is None:
            raise
        raise mapped from None
    for owner, link_changes in links_changed.items():
        changes.setdefault(owner, {}).update(link_changes)
    for row in new:
        await audit_service.record(
            session,
            actor_id=actor.user_id,
            action="create",
            entity_type=importing.audited.entity_type,
            entity_id=row.node,
            changes=changes.get(row.node, {}),
        )
    for row in changed:
        await audit_service.record(
            session,
            actor_id=actor.user_id,
            action="update",
            entity_type=importing.audited.entity_type,
            entity_id=row.node,
            changes=changes.get(row.node, {}),
        )
    await session.flush()
    if importing.delegated and any("permissions" in changes.get(row.node, {}) for row in changed):
        after_commit(session, auth.token_state.roles_changed)


async def _ids(session: AsyncSession, collection: Collection, new: list[Row]) -> dict[int, int]:
    """Ids for the new rows: the file's where it gives one, else drawn from the sequence."""
    table = collection.table.name
    given = [row.node for row in new if row.node > 0]
    if given:
        await session.execute(SKIP_GIVEN_IDS, {"top": max(given), "table": table})
    stand_ins = [row.node for row in new if row.node < 0]
    if not stand_ins:
        return {}
    drawn = (await session.scalars(DRAW_IDS, {"table": table, "n": len(stand_ins)})).all()
    return dict(zip(stand_ins, drawn, strict=True))


def _parents_first(rows: list[Row]) -> list[Row]:
    """New rows of a tree, each after its parent when the file creates that too."""
    by_node = {row.node: row for row in rows}
    placed: set[int] = set()
    ordered: list[Row] = []
    for row in rows:
        chain = []
        current: Row | None = row
        while current is not None and current.node not in placed:
            placed.add(current.node)
            chain.append(current)
            parent = current.values.get("parent_id")
            current = by_node.get(parent) if parent is not None else None
        ordered.extend(reversed(chain))
    return ordered


async def _write_links(
    session: AsyncSession, checked: Plan, rows: list[Row]
) -> dict[int, dict[str, Any]]:
    """Insert the new rows' links, replace the sets sent for changed rows; their audit changes."""
    audit: dict[int, dict[str, Any]] = {}
    for link in checked.collection.links:
        added: list[tuple[int, int]] = []
        removed: list[tuple[int, int]] = []
        current = checked.current_links.get(link.field, {})
        for row in rows:
            if link.field not in row.link_ids:
                continue
            owner = row.node
            before, after = current.get(row.node, set()), set(row.link_ids[link.field])
            added.extend((owner, linked) for linked in sorted(after - before))
            removed.extend((owner, linked) for linked in sorted(before - after))
            kind = audit_service.link_changes(before, after)
            if kind is not None:
                audit.setdefault(owner, {})[link.field] = kind
        for start in range(0, len(removed), PAIRS_PER_STATEMENT):
            chunk = removed[start : start + PAIRS_PER_STATEMENT]
            await session.execute(
                delete(link.table).where(exchange_queries.link_pairs(link, chunk))
            )
        for start in range(0, len(added), PAIRS_PER_STATEMENT):
            owners, linked = zip(*added[start : start + PAIRS_PER_STATEMENT], strict=True)
            await session.execute(
                exchange_queries.insert_links(link), {"owners": owners, "linked": linked}
            )
    return audit
