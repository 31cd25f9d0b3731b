"""Walking the dependency graph breadth-first in one recursive query that always ends.

Each step of the recursion is one row: the processes first reached at that depth (`ids`),
the path that reached each one (`paths`, ids joined by commas, the way the walk went) and
every process reached so far (`seen`). A step expands the whole frontier at once and keeps
only processes not seen before, so each process is reached once, at its shortest distance,
by one path; a cycle cannot make it loop, and the work grows with the processes reached,
not with the number of paths to them (which, in a graph where paths merge, grows
exponentially with the depth: `CYCLE ... SET ... USING path` enumerates every path).

An edge back to a process on the path that reached its start closes a cycle: the step
records that path, followed by the process it came back to (`cycles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    CTE,
    ColumnElement,
    Integer,
    Text,
    cast,
    func,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on

from app.domains.dependency.models import ProcessDependency

EDGES = ProcessDependency.__table__
EMPTY_IDS: ColumnElement[Any] = literal_column("'{}'::bigint[]")
NO_PATHS: ColumnElement[Any] = literal_column("'{}'::text[]")


@dataclass(frozen=True, slots=True)
class Way:
    """A direction of travel: from the edge's `near` end (reached) to its `far` end (next)."""

    near: Any
    far: Any


# Downstream: from a process to those that need it (the index on (depends_on_id, process_id)).
DOWNSTREAM = Way(EDGES.c.depends_on_id, EDGES.c.process_id)
# Upstream: from a process to those it needs (the primary key (process_id, depends_on_id)).
UPSTREAM = Way(EDGES.c.process_id, EDGES.c.depends_on_id)


def walk(
    name: str,
    start: ColumnElement[Any],
    way: Way,
    *,
    depth: ColumnElement[int],
    most: ColumnElement[int] | None = None,
) -> CTE:
    """The steps of a walk from the ids of the array `start`, at most `depth` steps away.

    With `most`, the walk takes no further step once it has reached more processes than that.
    """
    # Materialized: the start is computed once, not once per use.
    origin = (
        select(func.coalesce(start, EMPTY_IDS).label("ids"))
        .cte(f"{name}_origin")
        .prefix_with("MATERIALIZED")
    )
    first = select(
        literal_column("0", Integer).label("depth"),
        origin.c.ids,
        cast(origin.c.ids, ARRAY(Text)).label("paths"),
        origin.c.ids.label("seen"),
        NO_PATHS.label("cycles"),
    ).cte(name, recursive=True)

    frontier = (
        func.unnest(first.c.ids, first.c.paths)
        .table_valued("id", "path")
        .render_derived(name="frontier")
    )
    seen = func.unnest(first.c.seen).table_valued("id").render_derived(name="seen")
    # Every edge leaving the frontier: where it leads, from where, and whether it was seen.
    met = (
        select(
            way.far.label("id"),
            frontier.c.id.label("via"),
            frontier.c.path.label("path"),
            seen.c.id.is_not(None).label("known"),
        )
        .select_from(
            frontier.join(EDGES, way.near == frontier.c.id).outerjoin(seen, seen.c.id == way.far)
        )
        .cte(f"{name}_met", nesting=True)
    )
    # Each new process once, reached from the lowest id of the frontier that leads to it.
    fresh = (
        select(met.c.id, met.c.path)
        .where(~met.c.known)
        .ext(distinct_on(met.c.id))
        .order_by(met.c.id, met.c.via)
        .subquery(f"{name}_fresh")
    )
    path_to = fresh.c.path + "," + cast(fresh.c.id, Text)
    closing = met.c.path + "," + cast(met.c.id, Text)
    closes = func.strpos("," + met.c.path + ",", "," + cast(met.c.id, Text) + ",") > 0
    # A path of one id (the start) closes no cycle: none is a loop. Checked first: it is cheap.
    cycles = (
        select(func.array_agg(closing))
        .where(met.c.known, func.strpos(met.c.path, ",") > 0, closes)
        .scalar_subquery()
    )
    step = (
        select(
            func.array_agg(aggregate_order_by(fresh.c.id, fresh.c.id)).label("ids"),
            func.array_agg(aggregate_order_by(path_to, fresh.c.id)).label("paths"),
            cycles.label("cycles"),
        )
        .add_cte(met)
        .lateral(f"{name}_step")
    )
    # A step that reaches nothing new but closes cycles is kept (for its cycles); the next ends.
    conditions = [first.c.depth < depth, or_(step.c.ids.is_not(None), step.c.cycles.is_not(None))]
    if most is not None:
        conditions.append(func.cardinality(first.c.seen) <= most)
    return first.union_all(
        select(
            (first.c.depth + 1).label("depth"),
            step.c.ids,
            step.c.paths,
            first.c.seen.concat(step.c.ids).label("seen"),
            func.coalesce(step.c.cycles, NO_PATHS),
        )
        .select_from(first.join(step, true()))
        .where(*conditions)
    )


def reached(steps: CTE) -> Any:
    """Every process a walk reached: `(id, depth, path)`, one row each."""
    found = (
        func.unnest(steps.c.ids, steps.c.paths)
        .table_valued("id", "path")
        .render_derived(name=f"{steps.name}_found")
    )
    return (
        select(found.c.id, steps.c.depth, found.c.path)
        .select_from(steps.join(found, true()))
        .subquery(f"{steps.name}_reached")
    )
