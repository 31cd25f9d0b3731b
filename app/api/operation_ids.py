"""Readable, stable operationIds (`processes-list`, `users-me-get`) for generated clients.

The rule: the literal segments of the path under the API prefix, then a verb: `list` or
`get` for GET (by whether the path ends at one item), `create`, `update`, `delete` for
POST, PATCH, DELETE. Routes whose name the rule gets wrong are named in `NAMED`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.routing import APIRoute

VERBS = {"POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}

NAMED = {
    "POST /auth/token": "auth-token",
    "POST /auth/refresh": "auth-refresh",
    "POST /auth/logout": "auth-logout",
    "POST /auth/logout-all": "auth-logout-all",
    "GET /users/me": "users-me-get",
    "PATCH /users/me": "users-me-update",
    "POST /users/me/password": "users-me-password-change",
    "GET /departments/{department_id}/tree": "departments-tree-get",
    "GET /locations/{location_id}/tree": "locations-tree-get",
    "GET /processes/{process_id}/graph": "processes-graph-get",
    "GET /health": "health-live",
    "GET /ready": "health-ready",
}


def operation_ids(prefix: str) -> Callable[[APIRoute], str]:
    """FastAPI's `generate_unique_id_function` for an API included under `prefix`."""

    def operation_id(route: APIRoute) -> str:
        assert route.methods
        (method,) = route.methods
        path = route.path_format.removeprefix(prefix)
        named = NAMED.get(f"{method} {path}")
        if named is not None:
            return named
        segments = path.strip("/").split("/")
        words = [segment for segment in segments if not segment.startswith("{")]
        if method == "GET":
            verb = "get" if segments[-1].startswith("{") else "list"
        else:
            verb = VERBS[method]
        return "-".join([*words, verb])

    return operation_id
