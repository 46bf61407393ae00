"""The browser tests' shared fixtures: a real ``waypost agent -dev`` (which turns the UI on,
as Consul's -dev does) and headless Debian chromium driven by Playwright. Every request
the page makes is checked to stay on 127.0.0.1: the UI fetches nothing from elsewhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from ui_kit import CHROMIUM, CHROMIUM_ARGS, UIPage
from waypost.testing import AgentProcess


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
