"""`/docs` works offline: every asset it loads comes from this app, cached by its digest."""

from __future__ import annotations

import re

from httpx import AsyncClient

from app.core.config import PROJECT_ROOT

ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


async def test_docs_load_every_asset_from_this_origin(client: AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(urls) == len(ASSET_TYPES)
    assert all(url.startswith("/docs/assets/") for url in urls), urls
    assert "//" not in page.text.replace("http://www.w3.org", "")


async def test_docs_assets_are_served_and_cached_for_a_year(client: AsyncClient) -> None:
    page = await client.get("/docs")
    for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        name = url.split("?")[0].rsplit("/", 1)[-1]
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(ASSET_TYPES[name])
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert re.search(r"\?v=[0-9a-f]{16}$", url), "the URL changes with the files"


async def test_the_bundle_is_swagger_ui_5_as_its_readme_says(client: AsyncClient) -> None:
    page = await client.get("/docs")
    script = re.search(r'src="([^"]+swagger-ui-bundle\.js[^"]*)"', page.text)
    assert script is not None
    bundle = await client.get(script.group(1))
    version = re.search(r'PACKAGE_VERSION:"(\d+\.\d+\.\d+)"', bundle.text)
    assert version is not None
    assert version.group(1).startswith("5."), "Swagger UI 4 cannot render OpenAPI 3.1"
    readme = (PROJECT_ROOT / "app" / "static" / "swagger-ui" / "README.md").read_text()
    assert readme.startswith(f"# Swagger UI {version.group(1)}, vendored")
