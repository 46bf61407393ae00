"""The sessions page in a real browser against a real agent: sessions listed live with what
they are tied to, and invalidating one releases (or deletes) the lock it holds."""

from __future__ import annotations

from playwright.sync_api import expect

from ui_kit import LIVE_SECONDS, UIPage


def _session(ui: UIPage, body: dict[str, object]) -> str:
    return str(ui.agent.put("/v1/session/create", body)["ID"])


def test_sessions_are_listed_live_and_invalidated(ui: UIPage) -> None:
    page = ui.open("#/sessions")
    expect(page.get_by_text("There are no sessions.")).to_be_visible()
    sid = _session(ui, {"Name": "leader-lock", "TTL": "30s", "Behavior": "delete", "LockDelay": "2s"})
    row = page.locator(f'tr[data-id="{sid}"]')
    expect(row).to_be_visible(timeout=LIVE_SECONDS * 1000)
    expect(row).to_contain_text("leader-lock")
    expect(row.locator('td[data-label="TTL"]')).to_have_text("30s")
    expect(row.locator('td[data-label="Lock delay"]')).to_have_text("2s")
    expect(row.locator('td[data-label="Behavior"]')).to_have_text("delete")
    expect(row.locator('td[data-label="Checks"]')).to_have_text("serfHealth")
    expect(row.get_by_role("link", name="ui-node")).to_have_attribute("href", "#/nodes/ui-node")
    other = _session(ui, {"Name": "worker", "LockDelay": 0})
    expect(page.locator(f'tr[data-id="{other}"]')).to_contain_text("0s", timeout=LIVE_SECONDS * 1000)
    assert ui.agent.put(f"/v1/kv/locked?acquire={sid}", None) is True
    ui.screenshot("sessions")

    page.get_by_role("button", name="Invalidate session leader-lock").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("its locks are deleted")
    dialog.get_by_role("button", name="Cancel").click()
    assert ui.agent.get(f"/v1/session/info/{sid}") != []
    page.get_by_role("button", name="Invalidate session leader-lock").click()
    page.get_by_role("dialog").get_by_role("button", name="Invalidate").click()
    expect(row).to_have_count(0, timeout=LIVE_SECONDS * 1000)
    assert ui.agent.get(f"/v1/session/info/{sid}") == []
    assert ui.agent.request("GET", "/v1/kv/locked")[0] == 404
    expect(page.locator(f'tr[data-id="{other}"]')).to_be_visible()


def test_sessions_on_a_phone(ui: UIPage) -> None:
    _session(ui, {"Name": "phone-session", "TTL": "15s"})
    page = ui.open("#/sessions")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_text("phone-session")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
