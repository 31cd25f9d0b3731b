"""Writing a process's dependencies: the whole set at once, checked, audited as a new version."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CompoundSelect,
    Text,
    bindparam,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy import delete as delete_rows
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.lookups import unknown_ids
from app.domains.audit.service import Audited
from app.domains.auth.principal import Principal
from app.domains.dependency import queries
from app.domains.dependency.exceptions import RepeatedDependency, SelfDependency
from app.domains.dependency.models import ProcessDependency
from app.domains.dependency.schemas import DependencyRead, DependencyWrite
from app.domains.dependency.walk import EDGES
from app.domains.process.models import Process

# A change of dependencies is a change of the process: a new version, audited as its update
# with a `dependencies` change {added, removed, changed} (ids of the processes needed).
AUDITED = Audited("process", fields=())

PROCESS_ID = bindparam("process_id", type_=BigInteger)


# The body, as parallel arrays: one row per process needed.
SENT = (
    func.unnest(
        bindparam("ids", type_=ARRAY(BigInteger)),
        bindparam("kinds", type_=ARRAY(Text)),
        bindparam("notes", type_=ARRAY(Text)),
    )
    .table_valued("id", "kind", "note")
    .render_derived(name="sent")
)


def _replace_statement() -> CompoundSelect[Any]:
    """Make the process's dependencies exactly those sent, in one statement.

    Answers `(change, id)` rows: `added`, `changed` (kind or note), `removed`, and `missing`
    for ids that name no process (the caller then refuses the whole request). Every part
    reads the same snapshot, so `before` is the set as it was.
    """
    wanted = select(SENT.c.id, SENT.c.kind, SENT.c.note).cte("wanted")
    processes = Process.__table__
    known = (
        select(wanted.c.id, wanted.c.kind, wanted.c.note)
        .join(processes, processes.c.id == wanted.c.id)
        .cte("known")
    )
    before = select(EDGES.c.depends_on_id).where(EDGES.c.process_id == PROCESS_ID).cte("before")
    removed = (
        delete_rows(ProcessDependency)
        .where(EDGES.c.process_id == PROCESS_ID, EDGES.c.depends_on_id.not_in(select(wanted.c.id)))
        .returning(EDGES.c.depends_on_id.label("id"))
        .cte("removed")
    )
    upsert = insert(ProcessDependency).from_select(
        ["process_id", "depends_on_id", "kind", "note"],
        select(PROCESS_ID, known.c.id, known.c.kind, known.c.note),
    )
    written = (
        upsert.on_conflict_do_update(
            index_elements=[EDGES.c.process_id, EDGES.c.depends_on_id],
            set_={"kind": upsert.excluded.kind, "note": upsert.excluded.note},
            where=or_(
                EDGES.c.kind.is_distinct_from(upsert.excluded.kind),
                EDGES.c.note.is_distinct_from(upsert.excluded.note),
            ),
        )
        .returning(EDGES.c.depends_on_id.label("id"))
        .cte("written")
    )
    was_there = written.c.id.in_(select(before.c.depends_on_id))
    return union_all(
        select(literal("added").label("change"), written.c.id).where(~was_there),
        select(literal("changed"), written.c.id).where(was_there),
        select(literal("removed"), removed.c.id),
        select(literal("missing"), wanted.c.id).where(wanted.c.id.not_in(select(known.c.id))),
    )


REPLACE = _replace_statement()


def _check(process_id: int, items: list[DependencyWrite]) -> None:
    ids = [item.process_id for item in items]
    if process_id in ids:
        raise SelfDependency()
    repeated = sorted(i for i, count in Counter(ids).items() if count > 1)
    if repeated:
        raise RepeatedDependency(repeated)


async def replace(
    session: AsyncSession,
    *,
    process: Process,
    items: list[DependencyWrite],
    actor: Principal,
    if_match: list[int] | None,
) -> list[DependencyRead]:
    """Make the process's dependencies exactly `items`; unknown ids answer 422, writing nothing."""
    async with AUDITED.updating(session, process, actor=actor, if_match=if_match) as change:
        _check(process.id, items)
        parameters = {
            "process_id": process.id,
            "ids": [item.process_id for item in items],
            "kinds": [item.kind.value if item.kind else None for item in items],
            "notes": [item.note for item in items],
        }
        found: dict[str, list[int]] = {"added": [], "changed": [], "removed": [], "missing": []}
        for kind, process_id in (await session.execute(REPLACE, parameters)).all():
            found[kind].append(process_id)
        if found["missing"]:
            raise unknown_ids({"process_id": sorted(found["missing"])})
        if found["added"] or found["changed"] or found["removed"]:
            change.changes["dependencies"] = {
                kind: sorted(found[kind]) for kind in ("added", "removed", "changed")
            }
    return await queries.dependencies(session, process.id)
