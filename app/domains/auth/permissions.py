"""The permission catalogue: `<collection>:read` and `<collection>:write`, plus `audit:read`.

The collections are those of the domain registry (app/domains/__init__.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from app.domains import COLLECTIONS

CATALOGUE: dict[str, str] = {}
for _name, _what in COLLECTIONS.items():
    CATALOGUE[f"{_name}:read"] = f"List and read {_what}."
    CATALOGUE[f"{_name}:write"] = f"Create, update and delete {_what}."
CATALOGUE["audit:read"] = "Read the audit trail of every write."

PERMISSIONS = frozenset(CATALOGUE)


def _known_permissions(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions: {', '.join(unknown)}; see GET /api/v1/permissions")
    return sorted(set(value))


Permissions = Annotated[
    list[Annotated[str, StringConstraints(max_length=64)]],
    Field(max_length=len(PERMISSIONS) * 2),
    AfterValidator(_known_permissions),
]
"""A list of permission codes in a request body: known ones only, sorted, each once."""
