"""Applying a PATCH body to a row: only the fields the client sent, never null where required."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from app.core.errors import ValidationFailed


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
