"""The browser tests' shared fixtures: a real ``waypost agent -dev`` (which turns the UI on,
as Consul's -dev does) and headless Debian chromium driven by Playwright. Every request
the page makes is checked to stay on 127.0.0.1: the UI fetches nothing from elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Route, sync_playwright

from waypost.testing import AgentProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LIVE_SECONDS = 2.0
"""How soon a change in the catalog must show on an open page, without a reload."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
            if not os.path.exists(CHROMIUM):
                item.add_marker(pytest.mark.skip(reason="Debian's chromium is not installed"))


@pytest.fixture(scope="module")
def ui_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """One dev agent (node ``ui-node``) per test module."""
    log = Path(tmp_path_factory.mktemp("agent")) / "agent.log"
    with AgentProcess(["-dev", "-node", "ui-node"], log_path=log) as agent:
        yield agent


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield launched
    launched.close()


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


@pytest.fixture
def ui(browser: Browser, ui_agent: AgentProcess) -> Iterator[UIPage]:
    """A fresh browser context (no stored token or theme) on ``ui_agent``, 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    context.set_default_timeout(10_000)
    tab = UIPage(context.new_page(), ui_agent)
    yield tab
    context.close()
    assert tab.outside == [], "the UI fetched from outside 127.0.0.1"
    assert tab.errors == [], "the page had script errors"
