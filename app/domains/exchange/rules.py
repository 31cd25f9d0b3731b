"""The rules of an import that span rows, checked once every row is matched and validated.

Natural keys and sibling names stay unique, hierarchies have no cycle, roles carry only
permissions the importer holds, and a row that changes gives its current `version`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Forbidden
from app.domains.auth import delegation
from app.domains.auth.principal import Principal
from app.domains.exchange import queries as exchange_queries
from app.domains.exchange.collections import NaturalKey
from app.domains.exchange.rows import Plan, Ref, Row


def _label(node: int, rows: Mapping[int, Row]) -> str:
    return f"row {rows[node].number}" if node < 0 and node in rows else str(node)


async def refuse_cycles(session: AsyncSession, checking: Plan) -> None:
    """No row may end up below itself, whatever the order of the rows in the file."""
    collection = checking.collection
    parents = await exchange_queries.tree(session, collection.model)
    rows = {row.node: row for row in checking.rows if not row.failed}
    for node, row in rows.items():
        if "parent_id" in row.resolved:
            parents[node] = row.resolved["parent_id"]
        elif row.entity is None:
            parents[node] = None
    for node, row in rows.items():
        if "parent_id" not in row.resolved:
            continue
        chain = [node]
        current = parents.get(node)
        while current is not None and current not in chain and len(chain) <= len(parents):
            chain.append(current)
            current = parents.get(current)
        if current == node:
            path = " -> ".join(_label(item, rows) for item in [*chain, node])
            column = (row.refs.get("parent_id") or Ref(None, None, "parent_id")).column
            checking.fail(row, column, f"makes a cycle: {path}")


def _final(row: Row, column: str) -> Any:
    if column in row.values:
        return row.values[column]
    return getattr(row.entity, column) if row.entity is not None else None


async def keys_stay_unique(session: AsyncSession, checking: Plan, key: NaturalKey) -> None:
    collection = checking.collection
    rows = [row for row in checking.rows if not row.failed]
    finals: dict[int, str] = {}
    first: dict[str, Row] = {}
    for row in rows:
        value = _final(row, key.column)
        if value is None:
            continue
        folded = key.fold(value)
        if folded in first:
            checking.fail(row, key.column, f"{value!r} is also in row {first[folded].number}")
            continue
        first[folded] = row
        finals[row.node] = folded
    in_file = {row.node for row in rows}
    for holder, folded in await exchange_queries.holders(
        session, collection.model, key, finals.values()
    ):
        claimant = first.get(folded)
        if claimant is not None and holder not in in_file:
            taken = f"{_final(claimant, key.column)!r} is taken by {collection.entity} {holder}"
            checking.fail(claimant, key.column, taken)


async def names_stay_unique_among_siblings(session: AsyncSession, checking: Plan) -> None:
    collection = checking.collection
    rows = [row for row in checking.rows if not row.failed]
    first: dict[tuple[int, str], Row] = {}
    for row in rows:
        place = (_final(row, "parent_id") or 0, str(_final(row, "name")).lower())
        if place in first:
            also = f"is also the name of row {first[place].number}, under the same parent"
            checking.fail(row, "name", also)
            continue
        first[place] = row
    in_file = {row.node for row in rows}
    for holder, parent, name in await exchange_queries.siblings_named(
        session, collection.model, (name for _, name in first)
    ):
        claimant = first.get((parent or 0, name))
        if claimant is not None and holder not in in_file:
            taken = f"is taken under the same parent by {collection.entity} {holder}"
            checking.fail(claimant, "name", taken)


def within_delegation(checking: Plan, actor: Principal) -> None:
    """Nobody imports a role holding a permission they lack, nor changes such a role.

    A row that changes nothing writes nothing: it passes (an export imports back).
    """
    for row in checking.rows:
        if row.failed or (row.entity is not None and not row.changed):
            continue
        held = list(row.entity.permissions) if row.entity is not None else []
        wanted = row.values.get("permissions") or []
        try:
            name = _final(row, "name")
            delegation.ensure_within(
                actor, permissions=[*held, *wanted], action=f"import role {name!r}"
            )
        except Forbidden as error:
            checking.fail(row, "permissions", str(error.detail))


async def compare(session: AsyncSession, checking: Plan) -> None:
    """Which existing rows change anything; a changing row's `version` must be current."""
    collection = checking.collection
    rows = [row for row in checking.rows if not row.failed and row.entity is not None]
    current = checking.current_links
    for link in collection.links:
        current[link.field] = await exchange_queries.current_links(
            session, link, (row.node for row in rows if link.field in row.link_ids)
        )
    for row in rows:
        row.changed = any(
            _differs(getattr(row.entity, name), value) for name, value in row.values.items()
        )
        row.changed = row.changed or any(
            set(ids) != current[field].get(row.node, set()) for field, ids in row.link_ids.items()
        )
        if row.changed and row.version is not None and row.version != row.entity.version:
            checking.fail(
                row,
                "version",
                f"is {row.version} in the file but {row.entity.version} now: the "
                f"{collection.entity} changed since the file was exported",
            )


def _differs(current: Any, new: Any) -> bool:
    """Whether a value changes; lists (a role's permissions) in any order are the same."""
    if isinstance(current, list) and isinstance(new, list):
        return sorted(current) != sorted(new)
    return bool(current != new)
