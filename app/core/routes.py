"""One index of the app's routes, built once, for the edge code that must know a request's route.

The metrics and the access log label requests by template, the 405 answer names the allowed
methods, and the 415 check asks whether a route reads JSON: all three ask this index.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import Scope

UNMATCHED_ROUTE = "unmatched"

# (literal prefix, pattern, template): a path can only match a pattern if it starts with its prefix.
_Pattern = tuple[str, re.Pattern[str], str]


class RouteIndex:
    """The templates (`/api/v1/users/{user_id}`), methods and JSON bodies of an app's routes.

    Built on first use and again when routes were added since. `template` runs on every
    request before routing: a static path is one dict lookup, and only paths with parameters
    try the patterns whose literal prefix fits.
    """

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._routes = routes
        self._indexed = -1
        self._static: dict[str, str] = {}
        self._dynamic: list[_Pattern] = []
        self._by_route: dict[int, str] = {}
        self._methods: list[tuple[_Pattern, frozenset[str]]] = []
        self._json: list[tuple[_Pattern, frozenset[str]]] = []

    def template(self, path: str) -> str:
        """The template of the first route whose path matches, before routing (else "unmatched")."""
        if len(self._routes) != self._indexed:
            self._index()
        template = self._static.get(path)
        if template is not None:
            return template
        for prefix, pattern, template in self._dynamic:
            if path.startswith(prefix) and pattern.match(path):
                return template
        return UNMATCHED_ROUTE

    def routed(self, scope: Scope) -> str | None:
        """The template of the route the router picked (`scope["route"]`), once routed.

        FastAPI sets the route as declared in its router, without the prefixes it was included
        under; a route included twice has no single template, so it answers None.
        """
        route = scope.get("route")
        return None if route is None else self._by_route.get(id(route))

    def allowed_methods(self, path: str) -> str:
        """The methods of the path the router matched, as an `Allow` header value.

        Starlette names only its first route's. One path can have a route per method
        (`GET /users/me`, `PATCH /users/me`); the first template that matches is the one the
        router picked.
        """
        if len(self._routes) != self._indexed:
            self._index()
        matching = [
            (template, methods)
            for (prefix, pattern, template), methods in self._methods
            if path.startswith(prefix) and pattern.match(path)
        ]
        if not matching:
            return ""
        picked = matching[0][0]
        allowed = {m for template, methods in matching if template == picked for m in methods}
        if "GET" in allowed:
            allowed.add("HEAD")  # HeadMiddleware answers HEAD wherever GET is
        return ", ".join(sorted(allowed))

    def reads_json(self, method: str, path: str) -> bool:
        """Whether a route answering `method` on `path` reads a JSON body (not a form)."""
        if len(self._routes) != self._indexed:
            self._index()
        return any(
            method in methods and path.startswith(prefix) and pattern.match(path)
            for (prefix, pattern, _), methods in self._json
        )

    def _index(self) -> None:
        self._static.clear()
        self._dynamic.clear()
        self._by_route.clear()
        self._methods.clear()
        self._json.clear()
        included_twice: set[int] = set()
        for context in iter_route_contexts(self._routes):
            template = context.path_format
            if not isinstance(template, str):
                continue
            if context.param_convertors:
                entry = (template.split("{", 1)[0], context.path_regex, template)
                self._dynamic.append(entry)
            else:
                entry = (template, context.path_regex, template)
                self._static.setdefault(template, template)
            route = context.original_route
            if context.methods:
                self._methods.append((entry, frozenset(context.methods)))
            if _reads_json_body(route):
                self._json.append((entry, frozenset(route.methods or ())))
            key = id(route)
            if key in self._by_route:
                included_twice.add(key)
            self._by_route[key] = template
        for key in included_twice:
            del self._by_route[key]
        self._indexed = len(self._routes)


def _reads_json_body(route: BaseRoute) -> TypeGuard[APIRoute]:
    return (
        isinstance(route, APIRoute)
        and route.body_field is not None
        and not isinstance(route.body_field.field_info, Form)
    )
