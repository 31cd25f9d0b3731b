"""The permission catalogue: `<collection>:read` and `<collection>:write`, plus `audit:read`."""

from __future__ import annotations

COLLECTIONS = {
    "users": "users",
    "roles": "roles and their permissions",
    "departments": "departments",
    "locations": "locations",
    "resources": "resources",
    "processes": "processes and their links",
}

CATALOGUE: dict[str, str] = {}
for _name, _what in COLLECTIONS.items():
    CATALOGUE[f"{_name}:read"] = f"List and read {_what}."
    CATALOGUE[f"{_name}:write"] = f"Create, update and delete {_what}."
CATALOGUE["audit:read"] = "Read the audit trail of every write."

PERMISSIONS = frozenset(CATALOGUE)
