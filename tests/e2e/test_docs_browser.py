"""A real browser, cut off from every other host, uses /docs: sign in, then try an operation."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import pytest

from tests.factories import PASSWORD, Factory
from tests.serving import Server

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-first-run",
]
TIMEOUT_MS = 30_000
CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def _missing() -> str | None:
    missing = [
        name
        for name, present in (
            ("the playwright package (dev extra)", importlib.util.find_spec("playwright")),
            (f"chromium at {CHROMIUM} (apt-get install chromium)", Path(CHROMIUM).is_file()),
        )
        if not present
    ]
    return " and ".join(missing) or None


async def test_docs_sign_in_and_try_out_users_me(server: Server, factory: Factory) -> None:
    if missing := _missing():
        pytest.skip(f"the browser test needs {missing}; .ci/run installs both")
    from playwright.async_api import Route, async_playwright, expect

    expect.set_options(timeout=TIMEOUT_MS)
    user = await factory.user()
    blocked: list[str] = []

    async def only_the_server(route: Route) -> None:
        if route.request.url.startswith(f"{server.url}/"):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        await context.route("**/*", only_the_server)
        await context.add_init_script(CSP_VIOLATIONS)
        page = await context.new_page()
        try:
            await page.goto(f"{server.url}/docs")
            operation = page.locator("#operations-users-users-me-get")
            await expect(operation).to_be_visible()
            assert await page.locator(".opblock").count() > 40

            await page.locator(".auth-wrapper button.authorize").click()
            dialog = page.locator(".dialog-ux .modal-ux")
            await dialog.locator("#oauth_username").fill(user.email)
            await dialog.locator("#oauth_password").fill(PASSWORD)
            await dialog.locator("button.authorize").click()
            await expect(dialog.locator("button", has_text="Logout")).to_be_visible()
            await dialog.locator("button.btn-done").click()

            await operation.locator(".opblock-summary").click()
            await operation.locator("button.try-out__btn").click()
            await operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tr.response .response-col_status")
            await expect(status).to_have_text("200")
            await expect(operation.locator(".live-responses-table")).to_contain_text(user.email)

            assert await page.evaluate("window.cspViolations") == []
            assert blocked == []
        except BaseException:
            shot = Path(tempfile.mkdtemp(prefix="pa-docs-browser-")) / "docs.png"
            await page.screenshot(path=str(shot), full_page=True)
            violations = await page.evaluate("window.cspViolations")
            print(f"screenshot of the failing page: {shot}")
            print(f"requests to other hosts (blocked): {blocked}")
            print(f"Content-Security-Policy violations: {violations}")
            raise
        finally:
            await browser.close()
