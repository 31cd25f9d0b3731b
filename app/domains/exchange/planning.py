"""Checking an import before anything is written: every row, against the API's own rules.

Each row is decoded, matched to the row it updates (by `id`, else by natural key; else it
creates one, with its `id` when it gives one), its references resolved (by id or natural
key, against the database and the rows of the same file), then validated by the domain's
`XCreate` or `XUpdate` schema. Then the rules that span rows: natural keys and sibling names
stay unique, hierarchies have no cycle, roles carry only permissions the caller holds, and a
`version` names the row's current one. Every broken rule is a row error; none stops the
others from being checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.auth.principal import Principal
from app.domains.exchange import queries as exchange_queries
from app.domains.exchange import rules
from app.domains.exchange.collections import (
    KEYS,
    Collection,
    Importing,
    LinkKind,
    NaturalKey,
    entity_name,
)
from app.domains.exchange.formats import ParsedFile
from app.domains.exchange.rows import DecodeError, Plan, Ref, Row, decode, writable
from app.domains.exchange.schemas import ExportFormat


async def plan(
    session: AsyncSession,
    *,
    collection: Collection,
    parsed: ParsedFile,
    file_format: ExportFormat,
    actor: Principal,
    for_update: bool,
) -> Plan:
    """Every row decoded, matched, resolved and validated; the errors of every broken rule."""
    checking = Plan(collection, file_format, parsed.rows, errors=list(parsed.errors))
    decode(checking, parsed)
    await _match(session, checking, for_update=for_update)
    await _resolve(session, checking)
    _validate(checking)
    if checking.importing.tree:
        await rules.refuse_cycles(session, checking)
    if collection.key is not None:
        await rules.keys_stay_unique(session, checking, collection.key)
    if checking.importing.unique_among_siblings:
        await rules.names_stay_unique_among_siblings(session, checking)
    await rules.compare(session, checking)
    if checking.importing.delegated:
        rules.within_delegation(checking, actor)
    return checking


# --- matching rows ------------------------------------------------------------------------

# A new row created with the id its record gives moves the id sequence past it: this bound
# keeps a file from exhausting the sequence (and ids exact in JavaScript clients).
LARGEST_GIVEN_ID = 2**53 - 1


def _own_key(collection: Collection, row: Row) -> str | None:
    key = collection.key
    value = row.fields.get(key.column) if key else None
    return key.fold(value.strip()) if key and isinstance(value, str) and value.strip() else None


async def _match(session: AsyncSession, checking: Plan, *, for_update: bool) -> None:
    """Each row's target: the row with its id, else the one with its natural key, else new."""
    collection, key = checking.collection, checking.collection.key
    rows = [row for row in checking.rows if "id" not in row.faulty]
    existing = await exchange_queries.matching_rows(
        session,
        collection,
        ids=[row.file_id for row in rows if row.file_id is not None],
        keys=[own for row in rows if (own := _own_key(collection, row))],
        for_update=for_update,
    )
    by_id = {entity.id: entity for entity in existing}
    by_key = {}
    if key is not None:
        for entity in existing:
            value = getattr(entity, key.column)
            if value is not None:
                by_key[key.fold(value)] = entity
    stand_in = 0
    seen: dict[int, Row] = {}
    for row in rows:
        entity = by_id.get(row.file_id) if row.file_id is not None else None
        own = _own_key(collection, row)
        if entity is None and own is not None:
            entity = by_key.get(own)
        if entity is not None:
            row.entity, row.node = entity, entity.id
        elif row.file_id is not None:
            row.node = row.file_id
            if row.file_id > LARGEST_GIVEN_ID:
                checking.fail(
                    row, "id", f"is above {LARGEST_GIVEN_ID}, the largest a new row takes"
                )
        else:
            stand_in -= 1
            row.node = stand_in
        if row.node in seen:
            column = "id" if row.file_id is not None else (key.column if key else "id")
            checking.fail(
                row, column, f"names the same {collection.entity} as row {seen[row.node].number}"
            )
        else:
            seen[row.node] = row


# --- resolving references -----------------------------------------------------------------


@dataclass(slots=True)
class _Targets:
    """The rows a file may name of one kind: {id: folded key} and {folded key: id}."""

    key: NaturalKey | None
    entity: str
    by_id: dict[int, str | None] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)

    def resolve(self, ref: Ref) -> int:
        """The named row's node, or raise DecodeError saying why there is none."""
        by_id = ref.id if ref.id is not None and ref.id in self.by_id else None
        folded = self.key.fold(ref.key) if self.key and ref.key is not None else None
        by_key = self.by_key.get(folded) if folded is not None else None
        if by_id is not None and by_key is not None and by_id != by_key:
            assert self.key is not None
            raise DecodeError(
                f"id {ref.id} and {self.key.column} {ref.key!r} name different {self.entity}s"
            )
        found = by_id if by_id is not None else by_key
        if found is None:
            named = []
            if ref.id is not None:
                named.append(f"id {ref.id}")
            if ref.key is not None and self.key is not None:
                named.append(f"{self.key.column} {ref.key!r}")
            raise DecodeError(f"names no {self.entity} with {' or '.join(named)}")
        return found


async def _resolve(session: AsyncSession, checking: Plan) -> None:
    collection = checking.collection
    rows = [row for row in checking.rows if "id" not in row.faulty]
    wanted: dict[Any, tuple[set[int], set[str]]] = {}

    def want(target: Any, refs: Iterable[Ref | None]) -> None:
        ids, keys = wanted.setdefault(target, (set(), set()))
        key = _key_of(target)
        for ref in refs:
            if ref is None:
                continue
            if ref.id is not None:
                ids.add(ref.id)
            if ref.key is not None and key is not None:
                keys.add(key.fold(ref.key))

    for reference in collection.references:
        want(reference.target, (row.refs.get(reference.column) for row in rows))
    for link in collection.links:
        want(link.target, (ref for row in rows for ref in row.links.get(link.field, [])))
    targets: dict[Any, _Targets] = {}
    for target, (ids, keys) in wanted.items():
        found = _Targets(_key_of(target), entity_name(target))
        for target_id, folded in await exchange_queries.known(
            session, target, key=found.key, ids=ids, keys=keys
        ):
            found.by_id[target_id] = folded
            if folded is not None:
                found.by_key[folded] = target_id
        if target is collection.model:
            _add_file_rows(found, collection, rows)
        targets[target] = found
    for row in rows:
        for reference in collection.references:
            if reference.column not in row.refs:
                continue
            ref = row.refs[reference.column]
            if ref is None:
                row.resolved[reference.column] = None
                continue
            try:
                row.resolved[reference.column] = targets[reference.target].resolve(ref)
            except DecodeError as error:
                checking.fail(row, ref.column, str(error))
        for link in collection.links:
            _resolve_links(checking, row, link, targets.get(link.target))


def _key_of(target: Any) -> NaturalKey | None:
    return KEYS.get(target)


def _add_file_rows(found: _Targets, collection: Collection, rows: list[Row]) -> None:
    """The file's own rows, as they will be: a row may name a parent further down the file."""
    key = collection.key
    for row in rows:
        if row.entity is not None and key is not None:
            # Its key may change: the old one names it no more.
            old = key.fold(getattr(row.entity, key.column) or "")
            if found.by_key.get(old) == row.node:
                del found.by_key[old]
    for row in rows:
        final = _own_key(collection, row)
        unchanged_key = key is not None and key.column not in row.fields
        if final is None and row.entity is not None and key is not None and unchanged_key:
            final = key.fold(getattr(row.entity, key.column) or "") or None
        if row.node > 0:
            found.by_id[row.node] = final
        if final is not None:
            found.by_key[final] = row.node


def _resolve_links(checking: Plan, row: Row, link: LinkKind, found: _Targets | None) -> None:
    refs = row.links.get(link.field)
    if refs is None or found is None:
        return
    ids: list[int] = []
    unknown: list[str] = []
    for ref in refs:
        try:
            node = found.resolve(ref)
        except DecodeError as error:
            unknown.append(str(error))
            continue
        if node not in ids:
            ids.append(node)
    if unknown:
        checking.fail(row, refs[0].column, "; ".join(unknown))
        return
    row.link_ids[link.field] = ids


# --- the domain's schema ------------------------------------------------------------------


def _validate(checking: Plan) -> None:
    """Each row through the domain's XCreate (new rows) or XUpdate (existing rows)."""
    importing, collection = checking.importing, checking.collection
    columns = writable(collection)
    for row in checking.rows:
        if "id" in row.faulty:
            continue  # whether it creates or updates is not known
        # A row already refused is checked too, so that its report is complete.
        schema: type[BaseModel] = importing.update if row.entity is not None else importing.create
        payload: dict[str, Any] = {}
        for column, value in row.fields.items():
            name, part = columns[column]
            if part is None:
                payload[name] = value
            else:
                payload.setdefault(name, {})[part] = value
        for column, node in row.resolved.items():
            # A parent created by this file has no id yet: the schema checks a stand-in.
            payload[column] = node if node is None or node > 0 else 1
        payload.update(row.link_ids)
        if row.entity is None:
            payload = _without_nulls(payload)
        try:
            data = schema.model_validate(payload)
        except ValidationError as error:
            for problem in error.errors(include_url=False, include_input=False):
                at = _column(checking, row, problem["loc"])
                if at not in row.faulty:
                    checking.fail(row, at, _message(problem))
            continue
        if row.failed:
            continue
        values = _columns(importing, data, new=row.entity is None)
        row.link_ids = {
            link.field: values.pop(link.field) for link in collection.links if link.field in values
        }
        values.update(row.resolved)
        row.values = {name: value for name, value in values.items() if name in collection.table.c}


def _without_nulls(payload: dict[str, Any]) -> dict[str, Any]:
    """A new row's empty cells take the schema's defaults."""
    cleaned = {}
    for name, value in payload.items():
        if isinstance(value, dict):
            value = {part: item for part, item in value.items() if item is not None}
        if value is not None:
            cleaned[name] = value
    return cleaned


def _columns(importing: Importing, data: BaseModel, *, new: bool) -> dict[str, Any]:
    """The validated values as table columns (a nested field spread over its columns)."""
    values = data.model_dump(exclude_unset=not new)
    for name, parts in importing.nested.items():
        nested = values.pop(name, None)
        if nested is None:
            if new:
                values.update(dict.fromkeys(parts.values()))
            continue
        values.update({parts[part]: value for part, value in nested.items()})
    return values


def _column(checking: Plan, row: Row, loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    name = str(loc[0])
    importing, collection = checking.importing, checking.collection
    if name in importing.nested and len(loc) > 1:
        return importing.nested[name].get(str(loc[1]), name)
    ref = row.refs.get(name)
    if ref is not None:
        return ref.column
    for link in collection.links:
        if name == link.field:
            refs = row.links.get(link.field)
            return refs[0].column if refs else link.field
    return name


def _message(problem: Mapping[str, Any]) -> str:
    if problem.get("type") == "missing":
        return "is required"
    return str(problem.get("msg", "is not valid"))
