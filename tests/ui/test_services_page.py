"""The services and service pages in headless chromium against a real agent: what a person
sees for passing, warning and critical services, the filters, live changes without a
reload, hostile names shown as text, keyboard use, a phone-sized screen and both themes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from ui_kit import LIVE_SECONDS, UIPage
from waypost.testing import AgentProcess

HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'
ODD_NAMES = ("with space", "ünïcødé-名前", HOSTILE)


def _service(agent: AgentProcess, name: str, sid: str, port: int, status: str, **extra: object) -> None:
    """A service on the agent with a TTL check set to ``status`` (output and notes given)."""
    agent.put("/v1/agent/service/register", {
        "Name": name, "ID": sid, "Port": port, **extra,
        "Check": {"CheckID": f"{sid}-ttl", "Name": f"{name} heartbeat", "TTL": "300s",
                  "Notes": f"{name} pushes"},
    })  # fmt: skip
    verb = {"passing": "pass", "warning": "warn", "critical": "fail"}[status]
    agent.put(f"/v1/agent/check/{verb}/{sid}-ttl?note={status}+output+of+{sid}")


@pytest.fixture(scope="module", autouse=True)
def catalog(ui_agent: AgentProcess) -> None:
    _service(ui_agent, "web", "web-1", 8080, "passing", Tags=["v1", "blue"], Meta={"team": "core"})
    _service(ui_agent, "web", "web-2", 8081, "passing", Tags=["v1"], Address="10.0.0.2")
    _service(ui_agent, "api", "api-1", 9000, "warning", Tags=["green"])
    _service(ui_agent, "db", "db-1", 5432, "critical")


def _row(page: Page, name: str) -> object:
    return page.locator(f'.list-body .row[data-name="{name}"]')


def test_services_show_health_instances_and_tags(ui: UIPage) -> None:
    page = ui.open("#/services")
    web, api, db = _row(page, "web"), _row(page, "api"), _row(page, "db")
    expect(web.locator(".status")).to_have_text("passing")
    expect(web.locator(".instances")).to_have_text("2")
    expect(web.locator(".counts")).to_have_text("3 passing, 0 warning, 0 critical")
    expect(web.locator(".tags li")).to_have_text(["blue", "v1"])
    expect(api.locator(".status")).to_have_text("warning")
    expect(db.locator(".status")).to_have_text("critical")
    expect(db.locator(".healthbar")).to_have_attribute("aria-label", "1 passing, 0 warning, 1 critical")
    expect(page).to_have_title("Services (4) · waypost")
    expect(page.locator(".summary")).to_have_text("4 services")
    expect(page.locator('nav a[aria-current="page"]')).to_have_text("Services")
    ui.screenshot("services")


def test_search_and_filters(ui: UIPage) -> None:
    page = ui.open("#/services")
    expect(page.locator(".list-body .row:visible")).to_have_count(4)
    page.get_by_label("Search services").fill("we")
    expect(page.locator(".list-body .row:visible")).to_have_count(1)
    expect(page.locator(".summary")).to_have_text("Showing 1 of 4 services")
    page.get_by_label("Search services").fill("green")  # a tag
    expect(page.locator(".list-body .row:visible")).to_have_attribute("data-name", "api")
    page.get_by_label("Search services").fill("")
    page.get_by_label("Status").select_option("critical")
    expect(page.locator(".list-body .row:visible")).to_have_attribute("data-name", "db")
    page.get_by_label("Status").select_option("")
    page.get_by_label("Tag").select_option("v1")
    expect(page.locator(".list-body .row:visible")).to_have_attribute("data-name", "web")


def test_a_check_turning_critical_shows_without_a_reload(ui: UIPage, ui_agent: AgentProcess) -> None:
    page = ui.open("#/services")
    expect(_row(page, "web").locator(".status")).to_have_text("passing")
    page.evaluate("window.sameDocument = true")
    ui_agent.put("/v1/agent/check/fail/web-2-ttl?note=disk+full")
    expect(_row(page, "web").locator(".status")).to_have_text("critical", timeout=LIVE_SECONDS * 1000)
    expect(page).to_have_title("Services (4) · waypost")
    assert page.evaluate("window.sameDocument") is True
    page.get_by_role("link", name="web", exact=True).click()
    instance = page.locator('article[data-id="web-2"]')
    expect(instance.locator("[data-check='web-2-ttl'] .output")).to_have_text("disk full")
    ui_agent.put("/v1/agent/check/pass/web-2-ttl?note=recovered")
    expect(instance.locator("[data-check='web-2-ttl'] .status")).to_have_text(
        "passing", timeout=LIVE_SECONDS * 1000
    )
    expect(instance.locator("[data-check='web-2-ttl'] .output")).to_have_text("recovered")
    assert page.evaluate("window.sameDocument") is True


def test_service_page_shows_every_instance_and_check(ui: UIPage) -> None:
    page = ui.open("#/services/web")
    expect(page.locator("h1")).to_have_text("web")
    expect(page).to_have_title(re.compile(r"^web \(2\) · waypost$"))
    one, two = page.locator('article[data-id="web-1"]'), page.locator('article[data-id="web-2"]')
    expect(one.locator(".address")).to_have_text("127.0.0.1:8080")
    expect(two.locator(".address")).to_have_text("10.0.0.2:8081")
    expect(one.get_by_role("link", name="ui-node")).to_be_visible()
    expect(one.locator(".self-mark")).to_have_text("this agent")
    expect(one.locator(".tags li")).to_have_text(["v1", "blue"])
    expect(one.locator("dl.meta").filter(has_text="team").first).to_contain_text("core")
    check = one.locator("[data-check='web-1-ttl']")
    expect(check.locator(".status")).to_have_text("passing")
    expect(check.locator(".notes")).to_have_text("web pushes")
    expect(check.locator(".output")).to_have_text("passing output of web-1")
    expect(one.locator("[data-check='serfHealth'] .status")).to_have_text("passing")
    ui.screenshot("service")


def test_unknown_service_says_so(ui: UIPage) -> None:
    page = ui.open("#/services/nothing-here")
    expect(page.locator(".summary")).to_have_text("No instances of this service are registered.")


def test_hostile_and_unusual_names_show_as_text(ui: UIPage, ui_agent: AgentProcess) -> None:
    for i, name in enumerate(ODD_NAMES):
        _service(ui_agent, name, f"odd-{i}", 7000 + i, "passing", Tags=[HOSTILE])
    try:
        page = ui.open("#/services")
        for name in ODD_NAMES:
            expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
        page.get_by_role("link", name=HOSTILE, exact=True).click()
        expect(page.locator("h1")).to_have_text(HOSTILE)
        expect(page.locator(".tags li").first).to_have_text(HOSTILE)
        page.go_back()
        page.get_by_role("link", name="ünïcødé-名前", exact=True).click()
        expect(page.locator("h1")).to_have_text("ünïcødé-名前")
        assert page.locator("main img, main script").count() == 0
        assert page.evaluate("window.pwned") is None
    finally:
        for i in range(len(ODD_NAMES)):
            ui_agent.put(f"/v1/agent/service/deregister/odd-{i}")


def test_keyboard_only_use(ui: UIPage) -> None:
    page = ui.open("#/services")
    expect(_row(page, "api")).to_be_visible()
    page.keyboard.press("Tab")  # the skip link comes first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("/")
    expect(page.get_by_label("Search services")).to_be_focused()
    page.keyboard.type("api")
    for _ in range(4):  # past the status and tag filters to the one link left
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "api":
            break
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("api")
    expect(page.locator("main")).to_be_focused()  # the new page's content, not the old link's place
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="← All services")).to_be_focused()


def test_phone_sized_screen(browser: object, ui_agent: AgentProcess) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    page = context.new_page()
    phone = UIPage(page, ui_agent)
    try:
        phone.open("#/services")
        expect(_row(page, "web")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate("getComputedStyle(document.querySelector('.list-body .row')).display") == "block"
        phone.screenshot("services-phone")
    finally:
        context.close()
    assert phone.errors == []


def _background(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_dark_and_light_themes(browser: object, ui_agent: AgentProcess) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")  # type: ignore[attr-defined]
    page = context.new_page()
    dark = UIPage(page, ui_agent)
    try:
        dark.open("#/services")
        expect(_row(page, "db")).to_be_visible()
        assert _background(page) == "rgb(21, 24, 29)"  # the system's dark preference
        dark.screenshot("services-dark")
        page.get_by_role("button", name="Switch to the light theme").click()
        assert _background(page) == "rgb(255, 255, 255)"
        page.reload()  # the choice is remembered
        expect(_row(page, "db")).to_be_visible()
        assert _background(page) == "rgb(255, 255, 255)"
        expect(page.get_by_role("button", name="Switch to the dark theme")).to_be_visible()
    finally:
        context.close()
    assert dark.errors == []


CONTRAST = """(selectors) => {
  const rgb = (text) => text.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const [r, g, b, a] = rgb(getComputedStyle(el).backgroundColor);
      if (a === undefined || a > 0) return [r, g, b];
    }
    return [255, 255, 255];
  };
  const luminance = ([r, g, b]) => {
    const lin = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  return selectors.map((selector) => {
    const el = document.querySelector(selector);
    const [a, b] = [luminance(rgb(getComputedStyle(el).color)), luminance(background(el))];
    return [selector, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}"""
TEXT = [
    "h1", ".summary", ".list-head [role=columnheader]", '.row[data-name="web"] a',
    '.row[data-status="passing"] .status', '.row[data-status="warning"] .status',
    '.row[data-status="critical"] .status', ".counts", ".connection", "nav a[aria-current]",
]  # fmt: skip


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_in_both_themes(browser: Browser, ui_agent: AgentProcess, scheme: str) -> None:
    """WCAG AA: at least 4.5:1 between every kind of text and what is behind it."""
    context = browser.new_context(color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        UIPage(page, ui_agent).open("#/services")
        expect(_row(page, "db").locator(".status")).to_have_text("critical")
        ratios = dict(page.evaluate(CONTRAST, TEXT))
    finally:
        context.close()
    assert {selector: round(ratio, 2) for selector, ratio in ratios.items() if ratio < 4.5} == {}
