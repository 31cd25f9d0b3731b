"""Applying a PATCH body to a row: only the fields the client sent, never null where required."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from app.core.errors import ValidationFailed

T = TypeVar("T")


def _refuse_null(value: T) -> T:
    # Runs only on values the client sent: an omitted field keeps its default unvalidated.
    if value is None:
        raise PydanticCustomError("null_forbidden", "may not be null")
    return value


Omittable = Annotated[T | SkipJsonSchema[None], AfterValidator(_refuse_null)]
"""`name: Omittable[Name] = None`: a PATCH field that may be left out but never sent as null.

OpenAPI shows no null, and a null is a 422 of request validation, before any If-Match.
"""


def sent_fields(data: BaseModel, *, required: Iterable[str] = ()) -> dict[str, Any]:
    """The fields present in the request body; 422 when a required one is sent as null."""
    changes = data.model_dump(exclude_unset=True)
    nulled = sorted(name for name in required if name in changes and changes[name] is None)
    if nulled:
        raise ValidationFailed(
            f"These fields cannot be null: {', '.join(nulled)}.",
            extra={
                "errors": [
                    {"loc": ["body", name], "msg": "may not be null", "type": "null_forbidden"}
                    for name in nulled
                ]
            },
        )
    return changes


def assign(entity: object, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(entity, name, value)
