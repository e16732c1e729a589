"""The clerk console in a real Chromium: sign in, choose a counter, work it with the keyboard,
record a dossier for the ticket being served, return it, transfer a ticket."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

from .conftest import screenshot

pytestmark = pytest.mark.slow


def eventually(condition, what: str, timeout_s: float = 5.0) -> None:
    """Wait for the server's state (changed by the page's request) with a deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_clerk_works_a_counter_from_the_console(page, live, service, clerk_account) -> None:
    first = service.issue_ticket("dat-dai")[0]
    second = service.issue_ticket("dat-dai")[0]
    service.issue_ticket("ho-tich")
    page.goto(f"{live.url}/console")
    body = page.locator("body")
    expect(body).to_have_attribute("data-view", "login")

    page.fill("#username", clerk_account)
    page.fill("#password", "not the password")
    page.click("#login button[type=submit]")
    expect(page.locator("#message")).to_contain_text("Sai tên đăng nhập hoặc mật khẩu")
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")
    expect(body).to_have_attribute("data-view", "pick")
    page.select_option("#counter-choice", "quay-1")
    page.click("#pick button[type=submit]")
    expect(body).to_have_attribute("data-view", "work")
    page.wait_for_function("document.body.dataset.connection === 'live'")
    expect(page.locator("#queues tr[data-field='dat-dai'] .waiting")).to_have_text("2")
    expect(page.locator("#queues tr[data-field='dat-dai']")).to_have_class("mine")
    expect(page.locator("[data-action='finish']")).to_be_disabled()

    # N: call the next citizen.
    page.keyboard.press("n")
    expect(page.locator("#current-ticket")).to_have_text("A001")
    expect(body).to_have_attribute("data-status", "called")
    expect(page.locator("#queues tr[data-field='dat-dai'] .waiting")).to_have_text("1")
    assert service.counter_view("quay-1")["clerk"] == clerk_account
    # R: call again; S: the citizen has come.
    page.keyboard.press("r")
    eventually(lambda: service.get_ticket(first["id"]).call_count == 2, "the recall")
    page.keyboard.press("s")
    expect(body).to_have_attribute("data-status", "serving")
    expect(page.locator("#timer")).to_have_text(re.compile(r"^\d\d:\d\d$"))

    # Typing in a form is typing, not a shortcut.
    page.fill("#dossier-code", "HS-0100")
    page.locator("#dossier-code").press("x")
    expect(page.locator("#dossier-code")).to_have_value("HS-0100x")
    page.fill("#dossier-code", "HS-0100")
    page.fill("#dossier-procedure", "Cấp đổi giấy chứng nhận quyền sử dụng đất")
    page.fill("#dossier-days", "10")
    page.click("#dossier-receive button[type=submit]")
    expect(page.locator("#dossier-result")).to_contain_text("Đã tiếp nhận HS-0100")
    assert service.counter_view("quay-1")["ticket"] == "A001", "the x typed in the form did not finish the ticket"
    dossier = service.get_dossier("HS-0100")
    assert (dossier["ticket_id"], dossier["field"], dossier["counter"]) == (first["id"], "dat-dai", "quay-1")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "console-1920x1080.png")

    # X: finished; the rating window opens.
    page.locator("#dossier-procedure").blur()
    page.keyboard.press("x")
    expect(body).to_have_attribute("data-status", "rating")
    expect(page.locator("#current-ticket")).to_have_text("—")

    page.fill("#return-code", "HS-0100")
    page.click("#dossier-return button[type=submit]")
    expect(page.locator("#dossier-result")).to_have_attribute("data-outcome", "early")
    assert service.get_dossier("HS-0100")["returned_on"] == "2026-11-23"

    # C: transfer the next ticket to Hộ tịch's line.
    page.keyboard.press("n")
    expect(page.locator("#current-ticket")).to_have_text("A002")
    page.keyboard.press("c")
    expect(page.locator("#transfer")).to_be_visible()
    page.select_option("#transfer-field", "ho-tich")
    page.click("#transfer button[type=submit]")
    expect(page.locator("#current-ticket")).to_have_text("—")
    expect(page.locator("#queues tr[data-field='ho-tich'] .waiting")).to_have_text("2")
    assert service.get_ticket(second["id"]).field_id == "ho-tich"

    # Signing out ends the session: actions are refused until signing in again.
    page.click("#logout")
    expect(body).to_have_attribute("data-view", "login")
    assert page.evaluate("fetch('/api/v1/counters/quay-1/next', {method: 'POST'}).then(r => r.status)") == 401
