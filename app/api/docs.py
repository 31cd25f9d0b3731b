"""Swagger UI at `/docs`, served with its vendored assets by this app: no CDN, a strict CSP.

The page keeps FastAPI's inline start-up script; the Content-Security-Policy allows that
script by its SHA-256 hash, so no `'unsafe-inline'` is needed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PATH = "/docs/assets"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class SwaggerUI:
    """The docs page and its OAuth2 redirect, rendered once, with their scripts' CSP hashes."""

    paths = (DOCS_PATH, OAUTH2_REDIRECT_PATH)

    def __init__(self, *, title: str, openapi_url: str) -> None:
        version = assets_digest()
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js?v={version}",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css?v={version}",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png?v={version}",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
        )
        self.page = bytes(page.body)
        self.oauth2_redirect = bytes(get_swagger_ui_oauth2_redirect_html().body)
        self.script_hashes = inline_script_hashes(self.page, self.oauth2_redirect)

    def install(self, app: FastAPI) -> None:
        """Route the page, the redirect and the assets (cached for a year: URLs carry a digest)."""

        async def page(_: Request) -> HTMLResponse:
            return HTMLResponse(self.page)

        async def oauth2_redirect(_: Request) -> HTMLResponse:
            return HTMLResponse(self.oauth2_redirect)

        app.add_route(DOCS_PATH, page, include_in_schema=False)
        app.add_route(OAUTH2_REDIRECT_PATH, oauth2_redirect, include_in_schema=False)
        app.mount(ASSETS_PATH, ImmutableAssets(directory=ASSETS_DIR), name="swagger-ui-assets")


class ImmutableAssets(StaticFiles):
    """Static files whose URLs change with their content, so browsers may keep them a year."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
        return response


@cache
def assets_digest() -> str:
    """A short digest of the vendored assets, for URLs that change when they do."""
    digest = hashlib.sha256()
    for name in ASSETS:
        digest.update((ASSETS_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def inline_script_hashes(*pages: bytes) -> tuple[str, ...]:
    """CSP source expressions (`sha256-...`) of the inline scripts of `pages`."""
    return tuple(
        sorted(
            {
                "sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode()
                for page in pages
                for script in _INLINE_SCRIPT.findall(page)
            }
        )
    )
