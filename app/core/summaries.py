"""The small `{id, name}` and `{id, full_name}` objects responses embed for related rows.

TypedDicts, not models: a page of 100 processes embeds 600 of them, and pydantic
validates a TypedDict in half the time of a model (docs/benchmarks.md, change 9).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator
from typing_extensions import TypedDict


class NamedSummary(TypedDict):
    """A related entity, named."""

    id: int
    name: str


class PersonSummary(TypedDict):
    """A related user: owner, manager or author."""

    id: int
    full_name: str


def _named(value: Any) -> Any:
    # TypedDicts do not read attributes: a related ORM object becomes its summary here.
    if isinstance(value, Mapping):
        return value
    return {"id": value.id, "name": value.name}


NamedSummaryOf = Annotated[NamedSummary, BeforeValidator(_named)]
"""A NamedSummary validated from a related ORM object (`user.department`)."""
