"""Named database constraints and the errors clients see when a write breaks one.

The one place a constraint violation becomes a domain error. Each domain declares
`CONSTRAINTS` in its `exceptions.py` (constraint name -> error factory); the domain
registry registers them all. A factory receives the row that was being written (`Written`:
its model and its values as they were before the flush, which expires them) when the
violation happened in `flush(session, subject)`, or `NOTHING` when it surfaced elsewhere
(at commit, say), so that its message can name the value when it is known:

    CONSTRAINTS: Constraints = {
        "uq_departments_code": lambda written: DepartmentCodeTaken(written.get(Department, "code")),
    }

A factory that returns None leaves the violation to the generic answer (409 or 422 naming
the constraint). A name may hold `*` (`fnmatch`) to cover one constraint of every table, as
the author of every `EntityMixin` row: `"fk_*_created_by_id_users"`.

Never match the text of a driver's message: constraint names are stable and come from
the naming convention on the metadata (`app/core/database.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError


@dataclass(frozen=True, slots=True)
class Written:
    """The row a failed flush was writing: its model and its values before the flush."""

    model: type | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def get(self, model: type, name: str) -> Any:
        """The value of `name` if the row written was a `model`; None otherwise."""
        return self.values.get(name) if self.model is model else None


NOTHING = Written()

ConstraintError = Callable[[Written], AppError | None]
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


def _factory(name: str) -> ConstraintError | None:
    factory = _REGISTRY.get(name)
    if factory is None:
        patterns = (pattern for pattern in _REGISTRY if "*" in pattern)
        factory = next((_REGISTRY[p] for p in patterns if fnmatchcase(name, p)), None)
    return factory


def constraint_error(error: DBAPIError, written: Written = NOTHING) -> AppError | None:
    """The domain error registered for the constraint `error` reports, or None."""
    factory = _factory(constraint_name(error) or "")
    return None if factory is None else factory(written)


async def flush(session: AsyncSession, subject: object) -> None:
    """Flush; a violated constraint that a domain registered raises that domain's error."""
    # A failed flush expires the row: keep what the error may need to name beforehand.
    values = dict(inspect(subject).dict)
    try:
        await session.flush()
    except IntegrityError as error:
        mapped = constraint_error(error, Written(type(subject), values))
        if mapped is None:
            raise
        raise mapped from None


def registered() -> Mapping[str, ConstraintError]:
    """Every registered constraint (read-only), for tests and the docs."""
    return dict(_REGISTRY)
