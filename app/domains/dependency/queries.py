"""Reading the process graph: one process's dependencies and dependents, the graph around it,
and the impact of a failure (what stops, downstream, if a department, location, resource or
role fails). The walks are breadth-first recursive queries (`walk.py`)."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    ARRAY,
    CTE,
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    Subquery,
    any_,
    bindparam,
    case,
    cast,
    distinct,
    func,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed
from app.core.lookups import get_or_raise
from app.core.pagination import Keyset, PageParams, PageResult, fetch_page
from app.core.summaries import json_summary
from app.core.trees import subtree_ids
from app.domains.dependency.models import ProcessDependency
from app.domains.dependency.schemas import (
    DependencyRead,
    Direction,
    GraphEdge,
    GraphNode,
    GraphRead,
    ImpactFilters,
    ImpactItem,
    ImpactPage,
    ImpactSummary,
)
from app.domains.dependency.walk import DOWNSTREAM, EDGES, UPSTREAM, reached, walk
from app.domains.process import queries as process_queries
from app.domains.process.exceptions import ProcessNotFound
from app.domains.process.models import Criticality, Process, ProcessStatus
from app.domains.user.models import User

# A graph shows at most this many processes (nearest first); past it, `truncated` is set.
GRAPH_MOST = 1000
# The cycles an impact answer lists at most.
IMPACT_CYCLES = 100

BRIEF = type_coerce(
    func.json_build_object(
        "id",
        Process.id,
        "title",
        Process.title,
        "status",
        Process.status,
        "criticality",
        Process.criticality,
    ),
    JSON,
).label("process")

PROCESS_ID = bindparam("process_id", type_=BigInteger)

# What a process needs, in the order of their ids (at most MAX_LINKS: PUT sets them whole).
DEPENDENCIES: Select[Any] = (
    select(BRIEF, ProcessDependency.kind, ProcessDependency.note)
    .join(Process, Process.id == ProcessDependency.depends_on_id)
    .where(ProcessDependency.process_id == PROCESS_ID)
    .order_by(ProcessDependency.depends_on_id)
)

dependents_keyset = Keyset(ProcessDependency.process_id, {})

_DEPENDENCIES = TypeAdapter(builtins.list[DependencyRead])


async def lock_process(session: AsyncSession, process_id: int) -> Process:
    """The process row, locked until the transaction ends: its writers queue up here.

    `FOR NO KEY UPDATE`, not `FOR UPDATE`: adding a dependency checks the key of the process
    needed (`FOR KEY SHARE`), which `FOR UPDATE` blocks. Two processes made to need each
    other at the same moment would each wait for the other's lock, and PostgreSQL would
    abort one of them.
    """
    statement = (
        select(Process).where(Process.id == process_id).with_for_update(of=Process, key_share=True)
    )
    process = (await session.scalars(statement)).one_or_none()
    if process is None:
        raise ProcessNotFound(f"Process {process_id} does not exist.")
    return process


async def dependencies(session: AsyncSession, process_id: int) -> builtins.list[DependencyRead]:
    """What the process needs, each once with its kind and note (404 if it does not exist)."""
    rows = (await session.execute(DEPENDENCIES, {"process_id": process_id})).all()
    if not rows:
        await process_queries.get(session, process_id)
    return _DEPENDENCIES.validate_python(rows, from_attributes=True)


async def dependents(
    session: AsyncSession, *, process_id: int, page: PageParams
) -> PageResult[DependencyRead]:
    """A page of the processes that need this one, in id order (404 if it does not exist)."""
    statement = (
        select(ProcessDependency.process_id, BRIEF, ProcessDependency.kind, ProcessDependency.note)
        .join(Process, Process.id == ProcessDependency.process_id)
        .where(ProcessDependency.depends_on_id == process_id)
    )
    result = await fetch_page(session, statement, dependents_keyset, page, rows=True)
    if not result.items:
        await process_queries.get(session, process_id)
    items = _DEPENDENCIES.validate_python(result.items, from_attributes=True)
    return PageResult(items, result.next_cursor, result.total)


# --- the graph around one process -------------------------------------------------------

DEPTH = bindparam("depth", type_=Integer)
MOST = bindparam("most", type_=Integer)
NODE_IDS = bindparam("ids", type_=ARRAY(BigInteger))


def _owner() -> ColumnElement[Any]:
    """`{id, full_name}` of the process's owner, or null (the owner is outer-joined)."""
    return type_coerce(case((User.id.is_(None), None), else_=json_summary(User, "full_name")), JSON)


WAYS = {
    Direction.UPSTREAM: (("upstream", UPSTREAM),),
    Direction.DOWNSTREAM: (("downstream", DOWNSTREAM),),
    Direction.BOTH: (("upstream", UPSTREAM), ("downstream", DOWNSTREAM)),
}


@cache
def _graph_statement(direction: Direction) -> Select[Any]:
    """The processes within `depth` of the root, nearest first, at most `most` + 1 of them."""
    start = array([PROCESS_ID])
    found = [
        reached(walk(name, start, way, depth=DEPTH, most=MOST)) for name, way in WAYS[direction]
    ]
    both = union_all(*(select(f.c.id, f.c.depth) for f in found)).subquery("around")
    nearest = (
        select(both.c.id, func.min(both.c.depth).label("depth"))
        .group_by(both.c.id)
        .subquery("nearest")
    )
    return (
        select(
            Process.id,
            Process.title,
            Process.status,
            Process.criticality,
            _owner().label("owner"),
            nearest.c.depth,
        )
        .select_from(
            nearest.join(Process, Process.id == nearest.c.id).outerjoin(
                User, User.id == Process.owner_id
            )
        )
        .order_by(nearest.c.depth, Process.id)
        .limit(MOST + 1)
    )


def _edges_among() -> Select[Any]:
    needing = func.unnest(NODE_IDS).table_valued("id").render_derived(name="needing")
    needed = func.unnest(NODE_IDS).table_valued("id").render_derived(name="needed")
    return (
        select(
            EDGES.c.depends_on_id.label("from"),
            EDGES.c.process_id.label("to"),
            EDGES.c.kind,
        )
        .select_from(
            needing.join(EDGES, EDGES.c.process_id == needing.c.id).join(
                needed, needed.c.id == EDGES.c.depends_on_id
            )
        )
        .order_by(EDGES.c.depends_on_id, EDGES.c.process_id)
    )


# Every dependency between two of the processes `ids` (the edges of a drawn graph).
EDGES_AMONG: Select[Any] = _edges_among()

_NODES = TypeAdapter(builtins.list[GraphNode])
_EDGES = TypeAdapter(builtins.list[GraphEdge])


async def graph(
    session: AsyncSession, *, process_id: int, direction: Direction, depth: int
) -> GraphRead:
    """The processes within `depth` dependencies of one, the edges among them and their cycles."""
    parameters = {"process_id": process_id, "depth": depth, "most": GRAPH_MOST}
    rows = (await session.execute(_graph_statement(direction), parameters)).all()
    if not rows:  # the root is always its own node at depth 0: it does not exist
        await process_queries.get(session, process_id)
    nodes = _NODES.validate_python([row._asdict() for row in rows[:GRAPH_MOST]])
    ids = [node["id"] for node in nodes]
    edge_rows = (await session.execute(EDGES_AMONG, {"ids": ids})).all()
    edges = _EDGES.validate_python([row._asdict() for row in edge_rows])
    return GraphRead(
        root=process_id,
        direction=direction,
        depth=depth,
        nodes=nodes,
        edges=edges,
        cycles=cycles_among(ids, [(edge["from"], edge["to"]) for edge in edges]),
        truncated=len(rows) > GRAPH_MOST,
    )


def cycles_among(
    nodes: Iterable[int], edges: Iterable[tuple[int, int]]
) -> builtins.list[builtins.list[int]]:
    """One cycle per strongly connected group of two or more processes: `[a, b, ..., a]`.

    The cycle starts at the group's lowest id and is a shortest way back to it.
    """
    following: dict[int, builtins.list[int]] = {node: [] for node in nodes}
    for source, target in sorted(edges):
        following[source].append(target)
    found = []
    for group in _strongly_connected(following):
        if len(group) < 2:
            continue
        members, start = set(group), min(group)
        came_from: dict[int, int] = {start: start}
        frontier = [start]
        closing: int | None = None
        while frontier and closing is None:
            reached_now = []
            for node in frontier:
                for target in following[node]:
                    if target == start:
                        closing = node
                        break
                    if target in members and target not in came_from:
                        came_from[target] = node
                        reached_now.append(target)
                if closing is not None:
                    break
            frontier = reached_now
        assert closing is not None
        cycle = [closing]
        while cycle[-1] != start:
            cycle.append(came_from[cycle[-1]])
        found.append([*reversed(cycle), start])
    return sorted(found)


def _strongly_connected(
    following: dict[int, builtins.list[int]],
) -> builtins.list[builtins.list[int]]:
    """Tarjan's strongly connected components, iteratively (a graph may be 1,000 deep)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    stack: builtins.list[int] = []
    on_stack: set[int] = set()
    groups: builtins.list[builtins.list[int]] = []
    for root in following:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            targets = following[node]
            if position < len(targets):
                work.append((node, position + 1))
                target = targets[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


# --- impact -----------------------------------------------------------------------------

TREES = (process_queries.DEPARTMENTS, process_queries.LOCATIONS)
IMPACT_LINKS = {
    "department_id": process_queries.DEPARTMENTS,
    "location_id": process_queries.LOCATIONS,
    "resource_id": process_queries.RESOURCES,
    "role_id": process_queries.ROLES,
}
# Critical first: the order of the answer, and its cursor's first field.
RANK = case(
    {c.value: rank for rank, c in enumerate(reversed(Criticality))},
    value=Process.criticality,
    else_=len(Criticality),
)
IMPACT_ORDER = "criticality,depth"


def named(filters: ImpactFilters) -> dict[str, int]:
    """The failed entities the filters name: `{"location_id": 7, ...}`."""
    return {field: value for field in IMPACT_LINKS if (value := getattr(filters, field))}


# What fails: (field, id) pairs, whether subtrees fail too, and how deep to follow.
Failure = tuple[tuple[tuple[str, int], ...], bool, int]


def _failure(filters: ImpactFilters) -> Failure:
    return tuple(named(filters).items()), filters.include_descendants, filters.depth


def _directly_affected(failure: Failure) -> ColumnElement[Any]:
    """The ids of the processes linked to any failed entity, as one array."""
    failed, descendants, _ = failure
    parts = []
    for field, target_id in failed:
        link = IMPACT_LINKS[field]
        target = link.table.c[link.column]
        condition: ColumnElement[bool]
        if descendants and link in TREES:
            condition = target.in_(subtree_ids(link.target, target_id))
        else:
            condition = target == target_id
        parts.append(select(link.table.c.process_id.label("id")).where(condition))
    linked = union_all(*parts).subquery("linked")
    return select(func.array_agg(distinct(linked.c.id))).scalar_subquery()


@dataclass(frozen=True, slots=True)
class Impact:
    """What a failure affects, as the statement of each page reads it."""

    affected: CTE
    """Every process affected: id, status, criticality, rank, depth, path."""
    summary: Subquery
    """One row: counts by criticality, status and depth, the longest path, the cycles."""
    keyset: Keyset


# Built once per failure (about 3 ms of CPU), then reused by its next pages.
@lru_cache(maxsize=256)
def _impact(failure: Failure) -> Impact:
    steps = walk(
        "impact",
        _directly_affected(failure),
        DOWNSTREAM,
        depth=bindparam("depth", failure[2], type_=Integer),
    )
    found = reached(steps)
    affected = (
        select(
            Process.id,
            Process.status,
            Process.criticality,
            RANK.label("rank"),
            found.c.depth,
            found.c.path,
        )
        .join(found, found.c.id == Process.id)
        # One scan of the index that holds criticality and status for every id reached.
        .where(Process.id == any_(func.array(select(found.c.id).scalar_subquery())))
        .cte("affected")
    )
    keyset = Keyset(
        affected.c.id, {"criticality": affected.c.rank, "depth": affected.c.depth}, name="impact"
    )
    counted = (
        select(
            affected.c.criticality,
            affected.c.status,
            affected.c.depth,
            func.count().label("n"),
        )
        .group_by(affected.c.criticality, affected.c.status, affected.c.depth)
        .subquery("counted")
    )
    deepest = (
        select(affected.c.path).order_by(affected.c.depth.desc(), affected.c.id).limit(1)
    ).scalar_subquery()
    cycle = func.unnest(steps.c.cycles).table_valued("path").render_derived(name="cycle")
    met = select(cycle.c.path).select_from(steps.join(cycle, true())).limit(IMPACT_CYCLES)
    summary = select(
        type_coerce(
            select(func.json_agg(func.json_build_array(*counted.c))).scalar_subquery(), JSON
        ).label("counts"),
        _ids(deepest).label("longest"),
        select(func.array_agg(met.subquery().c.path)).scalar_subquery().label("cycles"),
    ).subquery("summary")
    return Impact(affected, summary, keyset)


def _impact_statement(impact: Impact, page: PageParams) -> Select[Any]:
    """One page of the affected processes, with the summary (the one row if the page is empty)."""
    affected, summary = impact.affected, impact.summary
    on_page = impact.keyset.apply(
        select(affected.c.id, affected.c.rank, affected.c.depth, affected.c.path), page
    ).subquery("on_page")
    return (
        select(
            summary.c.counts,
            summary.c.longest,
            summary.c.cycles,
            on_page.c.id,
            Process.title,
            Process.status,
            Process.criticality,
            _owner().label("owner"),
            on_page.c.rank,
            on_page.c.depth,
            _ids(on_page.c.path).label("path"),
        )
        .select_from(
            summary.outerjoin(
                on_page.join(Process, Process.id == on_page.c.id).outerjoin(
                    User, User.id == Process.owner_id
                ),
                true(),
            )
        )
        .order_by(on_page.c.rank, on_page.c.depth, on_page.c.id)
    )


def _ids(path: Any) -> ColumnElement[Any]:
    """A walk's path (`"3,7,12"`) as an array of ids."""
    return cast(func.string_to_array(path, ","), ARRAY(BigInteger))


_IMPACT_ITEMS = TypeAdapter(builtins.list[ImpactItem])
IMPACT_ITEM_FIELDS = ("id", "title", "status", "criticality", "owner", "depth", "path")


async def impact(session: AsyncSession, *, filters: ImpactFilters, page: PageParams) -> ImpactPage:
    """What stops if the named entities fail: linked processes, then everything downstream."""
    failed = named(filters)
    if not failed:
        raise ValidationFailed(
            "Name what fails: department_id, location_id, resource_id or role_id.",
            extra={
                "errors": [
                    {
                        "loc": ["query", "location_id"],
                        "msg": "at least one of department_id, location_id, resource_id "
                        "and role_id is required",
                        "type": "missing",
                    }
                ]
            },
        )
    for field, target_id in failed.items():
        await get_or_raise(session, IMPACT_LINKS[field].target, target_id)
    paged = PageParams(limit=page.limit, cursor=page.cursor, sort=IMPACT_ORDER, include_total=False)
    affected = _impact(_failure(filters))
    rows = (await session.execute(_impact_statement(affected, paged))).all()
    summary = rows[0]
    listed, next_cursor = affected.keyset.page([row for row in rows if row.id is not None], paged)
    items = _IMPACT_ITEMS.validate_python(
        [{name: getattr(row, name) for name in IMPACT_ITEM_FIELDS} for row in listed]
    )
    return ImpactPage(items=items, next_cursor=next_cursor, summary=_summary(summary))


def _summary(row: Any) -> ImpactSummary:
    by_criticality = dict.fromkeys((c.value for c in Criticality), 0)
    by_status = dict.fromkeys((s.value for s in ProcessStatus), 0)
    total = direct = 0
    for criticality, status, depth, count in row.counts or []:
        by_criticality[criticality] += count
        by_status[status] += count
        total += count
        direct += count if depth == 0 else 0
    return ImpactSummary.model_validate(
        {
            "total": total,
            "direct": direct,
            "downstream": total - direct,
            "by_criticality": by_criticality,
            "by_status": by_status,
            "longest_chain": row.longest or [],
            "cycles": distinct_cycles(row.cycles or []),
        }
    )


def distinct_cycles(paths: Iterable[str]) -> builtins.list[builtins.list[int]]:
    """The cycles closed by a walk's paths (`"1,4,5,4"`: 4 -> 5 -> 4), each once, sorted."""
    found = set()
    for path in paths:
        ids = [int(part) for part in path.split(",")]
        loop = ids[ids.index(ids[-1]) : -1]
        lowest = loop.index(min(loop))
        found.add((*loop[lowest:], *loop[:lowest], loop[lowest]))
    return sorted(builtins.list(cycle) for cycle in found)
