"""Named database constraints and the errors clients see when a write breaks one.

The one place a constraint violation becomes a domain error. Each domain declares
`CONSTRAINTS` in its `exceptions.py` (constraint name -> error factory); the domain
registry registers them all. A factory receives the entity being written when the
violation happened in `flush(session, subject=entity)`, or None when it surfaced elsewhere
(at commit, say), so its message can name the value when it is known:

    CONSTRAINTS: Constraints = {"uq_departments_code": DepartmentCodeTaken.of}

Never match the text of a driver's message: constraint names are stable and come from
the naming convention on the metadata (`app/core/database.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError

ConstraintError = Callable[[Any], AppError]
Constraints = Mapping[str, ConstraintError]

_REGISTRY: dict[str, ConstraintError] = {}


def register_constraints(constraints: Constraints) -> None:
    """Add a domain's constraints; a name may be registered once (again: the same factory)."""
    for name, factory in constraints.items():
        known = _REGISTRY.setdefault(name, factory)
        if known is not factory:
            raise ValueError(f"constraint {name!r} is registered twice")


def constraint_name(error: DBAPIError) -> str | None:
    """The name of the constraint a database error reports, if any (asyncpg's own field)."""
    original = getattr(error.orig, "__cause__", None) or error.orig
    name = getattr(original, "constraint_name", None)
    return name if isinstance(name, str) else None


def constraint_error(error: DBAPIError, subject: object | None = None) -> AppError | None:
    """The domain error registered for the constraint `error` reports, or None."""
    factory = _REGISTRY.get(constraint_name(error) or "")
    return None if factory is None else factory(subject)


async def flush(session: AsyncSession, subject: object | None = None) -> None:
    """Flush; a violated constraint that a domain registered raises that domain's error."""
    try:
        await session.flush()
    except IntegrityError as error:
        mapped = constraint_error(error, subject)
        if mapped is None:
            raise
        raise mapped from None


def registered() -> Mapping[str, ConstraintError]:
    """Every registered constraint (read-only), for tests and the docs."""
    return dict(_REGISTRY)
