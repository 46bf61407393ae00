"""What the browser tests share besides fixtures: how chromium is started, a tab on the
agent's UI that refuses traffic leaving 127.0.0.1, and where screenshots go."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Page, Route

from waypost.testing import AgentProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
LIVE_SECONDS = 2.0
"""How soon a change in the catalog must show on an open page, without a reload."""


class UIPage:
    """A browser tab on the agent's UI: ``ui.open("#/services")`` then Playwright's ``ui.page``.

    Requests leaving 127.0.0.1 are refused and recorded, as are the page's script errors;
    the fixture fails the test if there were any."""

    def __init__(self, page: Page, agent: AgentProcess) -> None:
        self.page = page
        self.agent = agent
        self.outside: list[str] = []
        self.errors: list[str] = []
        page.route("**/*", self._only_local)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)

    def _only_local(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def open(self, hash_path: str = "") -> Page:
        self.page.goto(f"{self.agent.url}/ui/{hash_path}")
        return self.page

    def screenshot(self, name: str) -> Path:
        """docs/screenshots/<name>.png, shown in the README."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=False)
        return target
