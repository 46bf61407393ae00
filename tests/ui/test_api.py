"""js/api.js in headless chromium: an agent that goes away shows as "disconnected" in the
shell, the watches back off, and the page recovers by itself when the agent is back."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from ui_kit import UIPage
from waypost.testing import AgentProcess, free_port


def test_lost_agent_shows_disconnected_then_recovers(browser: Browser, tmp_path: Path) -> None:
    ports = {"http_port": free_port(), "dns_port": free_port(), "server_port": free_port()}
    args = ["-dev", "-node", "flaky"]
    context = browser.new_context()
    tab = UIPage(context.new_page(), AgentProcess(args, **ports))
    agent = AgentProcess(args, log_path=tmp_path / "first.log", **ports).start()
    try:
        page = tab.open("#/services")
        badge = page.locator(".connection")
        expect(badge).to_have_text("live")
        expect(page.locator('.row[data-name="consul"]')).to_be_visible()
        agent.stop()
        expect(badge).to_have_text("disconnected")
        expect(badge).to_have_attribute("data-state", "disconnected")
        agent = AgentProcess(args, log_path=tmp_path / "second.log", **ports).start()
        agent.put("/v1/agent/service/register", {"Name": "back-again"})
        expect(badge).to_have_text("live", timeout=15_000)
        expect(page.locator('.row[data-name="back-again"]')).to_be_visible()
    finally:
        agent.stop()
        context.close()
    assert tab.outside == []
    assert tab.errors == []
