"""The authenticated caller, as services see it: no FastAPI, no Redis, no PostgreSQL.

Routes obtain a `Principal` from `app.domains.auth.dependencies` (which checks the token);
services receive it as `actor=` and import only this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as known from the token and Redis (no PostgreSQL query)."""

    user_id: int
    is_superuser: bool
    permissions: frozenset[str]
    session_id: str
    jti: str
    expires_at: int

    def can(self, permission: str) -> bool:
        return self.is_superuser or permission in self.permissions
