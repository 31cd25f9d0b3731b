"""Parent-child hierarchies (departments, locations): one recursive query per question."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ValidationFailed


def subtree_ids(model: Any, root_id: int) -> Select[Any]:
    """A SELECT of `root_id` and every descendant's id (usable as an IN subquery)."""
    # Named per table: one statement may filter by a department and a location subtree.
    name = f"{model.__tablename__}_subtree"
    tree = select(model.id).where(model.id == root_id).cte(name, recursive=True)
    tree = tree.union_all(select(model.id).where(model.parent_id == tree.c.id))
    return select(tree.c.id)


async def walk_subtree(session: AsyncSession, model: Any, root_id: int) -> list[Any]:
    """The root and all its descendants with their depth, parents before children."""
    tree = (
        select(model.id, model.parent_id, literal(0).label("depth"))
        .where(model.id == root_id)
        .cte("subtree", recursive=True)
    )
    tree = tree.union_all(
        select(model.id, model.parent_id, (tree.c.depth + 1).label("depth")).where(
            model.parent_id == tree.c.id
        )
    )
    statement = (
        select(model, tree.c.depth)
        .join(tree, tree.c.id == model.id)
        .order_by(tree.c.depth, model.id)
    )
    return list((await session.execute(statement)).all())


async def check_parent(
    session: AsyncSession, model: Any, *, node_id: int | None, parent_id: int | None
) -> None:
    """422 when `parent_id` does not exist, or when it would put `node_id` under itself."""
    if parent_id is None:
        return
    if node_id is not None and parent_id == node_id:
        raise ValidationFailed("An entity cannot be its own parent.")
    ancestors = (
        select(model.id, model.parent_id)
        .where(model.id == parent_id)
        .cte("ancestors", recursive=True)
    )
    ancestors = ancestors.union_all(
        select(model.id, model.parent_id).where(model.id == ancestors.c.parent_id)
    )
    chain = set((await session.scalars(select(ancestors.c.id))).all())
    if parent_id not in chain:
        raise ValidationFailed(f"parent_id {parent_id} does not exist.")
    if node_id is not None and node_id in chain:
        raise ValidationFailed(
            f"parent_id {parent_id} is below this entity; the change would make a cycle."
        )


def nest(rows: list[Any], to_node: Any) -> dict[str, Any]:
    """Turn (entity, depth) rows, parents first, into one nested tree of `to_node` dicts."""
    nodes: dict[int, dict[str, Any]] = {}
    root: dict[str, Any] | None = None
    for entity, _depth in rows:
        node = {**to_node(entity), "children": []}
        nodes[entity.id] = node
        parent = nodes.get(entity.parent_id) if root is not None else None
        if parent is None:
            root = root or node
        else:
            parent["children"].append(node)
    assert root is not None
    return root


async def lock_tree(session: AsyncSession, model: Any) -> None:
    """Queue this transaction behind every other writer of the same tree.

    Two moves checked at the same time could each pass the cycle check and together close
    a loop; one transaction-scoped lock per tree makes the check and the move atomic.
    """
    key = func.hashtext(f"tree:{model.__tablename__}")
    await session.execute(select(func.pg_advisory_xact_lock(key)))
