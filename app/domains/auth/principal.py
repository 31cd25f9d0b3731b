"""The authenticated caller, as services see it: no FastAPI, no Redis, no PostgreSQL.

Routes obtain a `Principal` from `app.domains.auth.dependencies` (which checks the token);
services receive it as `actor=` and import only this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as known from the token and Redis (no PostgreSQL query).

    Through an API token (`api_token_id` set) there is no session (`session_id` and `jti`
    are empty), never superuser status, and the permissions are the token's own list
    narrowed to what its owner holds now.
    """

    user_id: int
    is_superuser: bool
    permissions: frozenset[str]
    session_id: str
    jti: str
    expires_at: int
    api_token_id: int | None = None

    def can(self, permission: str) -> bool:
        return self.is_superuser or permission in self.permissions
