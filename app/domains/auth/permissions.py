"""The permission catalogue: `<collection>:read` and `<collection>:write`, plus `audit:read`.

The collections are those of the domain registry (app/domains/__init__.py).
"""

from __future__ import annotations

from app.domains import COLLECTIONS

CATALOGUE: dict[str, str] = {}
for _name, _what in COLLECTIONS.items():
    CATALOGUE[f"{_name}:read"] = f"List and read {_what}."
    CATALOGUE[f"{_name}:write"] = f"Create, update and delete {_what}."
CATALOGUE["audit:read"] = "Read the audit trail of every write."

PERMISSIONS = frozenset(CATALOGUE)
