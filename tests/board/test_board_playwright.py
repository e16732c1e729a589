"""The lobby board and a counter display in a real Chromium against a real waitress server:
live updates without reloads, figures equal to the API, reconnection, calls announced in turn."""
from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote, urlsplit

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from queue_server.domain.counters import Action

from .conftest import LiveServer, screenshot

pytestmark = pytest.mark.slow

CLERK = "nguyen-van-an"
LIVE = "document.body.dataset.connection === 'live'"
NOTICE = "Trung tâm làm việc từ 7 giờ 30 đến 17 giờ, thứ Hai đến thứ Sáu · Open 7:30–17:00, Monday to Friday"

# Records every audio element's play/ended/error (media events do not bubble: listen in the
# capture phase), and plays at 4× so the test does not sit through each sentence.
AUDIO_PROBE = """
window.__played = [];
for (const type of ['play', 'ended', 'error']) {
  document.addEventListener(type, (event) => {
    const src = event.target.currentSrc ? new URL(event.target.currentSrc).pathname : '';
    const latest = document.getElementById('latest');
    window.__played.push({type, src, t: performance.now(), shown: latest ? latest.dataset.callId : null});
  }, true);
}
const originalPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () { this.playbackRate = 4; return originalPlay.call(this); };
"""


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function(LIVE)
    page.evaluate("window.__sameDocument = true")  # a reload would lose it


def tile(page, counter: str):
    return page.locator(f"#serving .tile[data-counter='{counter}'] .tile-ticket")


def test_a_call_shows_on_the_board_and_the_counter_display_without_reload(page, live, service) -> None:
    service.issue_ticket("dat-dai")
    service.issue_ticket("dat-dai")
    open_page(page, f"{live.url}/board?sound=0")
    display = page.context.new_page()
    open_page(display, f"{live.url}/counter/quay-1")
    expect(tile(page, "quay-1")).to_have_text("—")
    expect(display.locator("#ticket")).to_have_text("—")
    expect(display.locator("#number")).to_have_text("1")

    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)

    expect(tile(page, "quay-1")).to_have_text("A001")
    expect(page.locator("#serving .tile[data-counter='quay-1']")).to_contain_text("Đất đai")
    expect(page.locator("#latest-ticket")).to_have_text("A001")
    expect(page.locator("#latest-counter")).to_have_text("1")
    expect(page.locator("#calls li").first).to_have_attribute("data-ticket", "A001")
    expect(page.locator("#queues tr[data-field='dat-dai'] .queue-waiting")).to_have_text("1")
    expect(display.locator("#ticket")).to_have_text("A001")
    expect(display.locator("#clerk")).to_contain_text("Nguyễn Văn An")
    expect(display.locator("#field")).to_contain_text("Đất đai")
    expect(display.locator("body")).to_have_attribute("data-status", "called")

    service.counter_action("quay-1", Action.START, clerk_id=CLERK)
    expect(display.locator("body")).to_have_attribute("data-status", "serving")
    screenshot(display, "counter-1920x1080.png")
    service.counter_action("quay-1", Action.FINISH, clerk_id=CLERK)
    expect(display.locator("body")).to_have_attribute("data-status", "rating")
    expect(display.locator("#ticket")).to_have_text("—")
    expect(tile(page, "quay-1")).to_have_text("—")
    assert page.evaluate("window.__sameDocument") and display.evaluate("window.__sameDocument"), "no reload"


def stat_values(page) -> dict:
    return dict(page.eval_on_selector_all("[data-stat]", "els => els.map(e => [e.dataset.stat, e.dataset.value])"))


def pick(figures: dict, path: str):
    for key in path.split("."):
        figures = figures[key]
    return figures


def test_the_figures_equal_the_api_after_a_busy_morning(page, live, service, clock) -> None:
    open_page(page, f"{live.url}/board?sound=0&notice={quote(NOTICE)}")
    # A morning: tickets in three fields, one priority; served, missed, rated; dossiers early, on time, late.
    first = service.issue_ticket("dat-dai")[0]
    for field, priority in (("dat-dai", None), ("dat-dai", None), ("ho-tich", "elderly"), ("ho-tich", None), ("kinh-doanh", None)):
        service.issue_ticket(field, priority)
    clock.advance(minutes=4)
    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
    clock.advance(minutes=6)
    service.counter_action("quay-1", Action.FINISH, clerk_id=CLERK)
    service.record_rating("quay-1", "very_satisfied")
    clock.advance(minutes=16)  # beyond Hộ tịch's 10-minute target
    service.counter_action("quay-2", Action.NEXT, clerk_id="tran-thi-binh")
    service.counter_action("quay-2", Action.NO_SHOW, clerk_id="tran-thi-binh")
    service.counter_action("quay-3", Action.NEXT, clerk_id="le-van-cuong")
    clock.advance(minutes=3)
    service.counter_action("quay-3", Action.FINISH, clerk_id="le-van-cuong")
    service.record_rating("quay-3", "unsatisfied")
    service.counter_action("quay-2", Action.NEXT, clerk_id="tran-thi-binh")
    service.receive_dossier("HS-001", "Cấp giấy chứng nhận quyền sử dụng đất", "dat-dai", working_days=10, ticket_id=first["id"])
    service.return_dossier("HS-001")  # long before its date: early
    service.receive_dossier("HS-002", "Đăng ký khai sinh", "ho-tich", due_date=date(2026, 11, 23), received_on=date(2026, 11, 18))
    service.return_dossier("HS-002")  # on its date: on time
    service.receive_dossier("HS-003", "Đăng ký hộ kinh doanh", "kinh-doanh", due_date=date(2026, 11, 20), received_on=date(2026, 11, 16))
    service.return_dossier("HS-003")  # after it: late
    service.receive_dossier("HS-004", "Chuyển mục đích sử dụng đất", "dat-dai", working_days=15)

    expected = requests.get(f"{live.url}/api/v1/stats/today", timeout=5).json()
    assert expected["tickets"]["issued"] == 6 and expected["dossiers"]["resolved"]["late"] == 1
    try:
        page.wait_for_function(
            """expected => [...document.querySelectorAll('[data-stat]')].every(element =>
                 JSON.stringify(JSON.parse(element.dataset.value ?? 'null')) ===
                 JSON.stringify(element.dataset.stat.split('.').reduce((value, key) => value?.[key], expected) ?? null))""",
            arg=expected,
        )
    except PlaywrightTimeout:
        shown = stat_values(page)
        differences = {path: (value, pick(expected, path)) for path, value in shown.items() if value != str(pick(expected, path)).lower()}
        pytest.fail(f"the board's figures never matched /api/v1/stats/today: {differences}")
    shown = stat_values(page)
    assert set(shown) >= {
        "tickets.issued", "tickets.served", "tickets.waiting", "tickets.within_target_pct",
        "dossiers.received.total", "dossiers.resolved.early", "dossiers.resolved.on_time", "dossiers.resolved.late", "dossiers.on_time_pct",
        "ratings.by_level.very_satisfied", "ratings.by_level.satisfied", "ratings.by_level.unsatisfied",
        "ratings.satisfaction_pct", "ratings.index",
    }
    # What a citizen reads, not only what the test reads.
    expect(page.locator("[data-stat='tickets.issued'] b")).to_have_text("6")
    expect(page.locator("[data-stat='ratings.satisfaction_pct'] b")).to_have_text("50%")
    expect(page.locator("[data-stat='dossiers.resolved.late'] b")).to_have_text("1")
    for field in ("dat-dai", "ho-tich", "kinh-doanh"):
        waiting = service.queue_state(field)["waiting"]
        expect(page.locator(f"#queues tr[data-field='{field}'] .queue-waiting")).to_have_text(str(waiting))
    expect(page.locator("#notice")).to_have_text(NOTICE)
    assert page.evaluate("window.__sameDocument")

    screenshot(page, "board-1920x1080.png")
    page.set_viewport_size({"width": 1080, "height": 1920})
    expect(page.locator(".column-main")).to_have_css("display", "contents")  # the portrait layout took over
    screenshot(page, "board-1080x1920.png")


def test_reconnecting_then_back_with_the_whole_state(page, board_app, service) -> None:
    server = LiveServer(board_app).start()
    try:
        service.issue_ticket("dat-dai")
        service.issue_ticket("dat-dai")
        open_page(page, f"{server.url}/board?sound=0")
        expect(page.locator("#connection")).to_be_hidden()

        server.stop()
        page.wait_for_function("document.body.dataset.connection === 'reconnecting'")
        expect(page.locator("#connection")).to_be_visible()
        expect(page.locator("#connection")).to_contain_text("Đang kết nối lại…")
        expect(page.locator("#connection")).to_contain_text("Reconnecting…")
        screenshot(page, "board-reconnecting-1920x1080.png")

        # The centre goes on while the board is cut off.
        service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
        service.issue_ticket("kinh-doanh")

        server = LiveServer(board_app, port=server.port).start()
        page.wait_for_function(LIVE, timeout=15_000)
        expect(page.locator("#connection")).to_be_hidden()
        expect(tile(page, "quay-1")).to_have_text("A001")
        expect(page.locator("#calls li").first).to_have_attribute("data-ticket", "A001")
        expect(page.locator("[data-stat='tickets.issued']")).to_have_attribute("data-value", "3")
        expect(page.locator("#queues tr[data-field='kinh-doanh'] .queue-waiting")).to_have_text("1")
        assert page.evaluate("window.__sameDocument"), "recovered without a reload"
    finally:
        server.stop()


def test_calls_are_announced_in_turn_never_over_each_other(page, live, service) -> None:
    page.add_init_script(AUDIO_PROBE)
    service.issue_ticket("dat-dai")
    service.issue_ticket("kinh-doanh")
    open_page(page, f"{live.url}/board?voice=vi")

    # Two calls in the same instant, from two counters, then a recall of the first.
    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
    service.counter_action("quay-3", Action.NEXT, clerk_id="le-van-cuong")
    first_call = service.counter_view("quay-1")["ticket_id"] + "#1"
    second_call = service.counter_view("quay-3")["ticket_id"] + "#1"
    page.wait_for_function("window.__played.filter(e => e.type === 'ended').length >= 6")
    service.counter_action("quay-1", Action.RECALL, clerk_id=CLERK)
    page.wait_for_function("window.__played.filter(e => e.type === 'ended').length >= 9")

    played = page.evaluate("window.__played")
    assert not [e for e in played if e["type"] == "error"], played
    assert [e["type"] for e in played] == ["play", "ended"] * 9, "each clip ends before the next starts"
    for started, ended in zip(played[::2], played[1::2]):
        assert started["src"] == ended["src"] and started["t"] <= ended["t"]
    for ended, started in zip(played[1::2], played[2::2]):
        assert ended["t"] <= started["t"]
    chime = "/board/static/chime.wav"
    call_a, call_c = "/board/voice/A001/quay-1.wav", "/board/voice/C001/quay-3.wav"
    assert [e["src"] for e in played[::2]] == [chime, call_a, call_a, chime, call_c, call_c, chime, call_a, call_a]
    # The big "now calling" line shows the call being said, while it is said.
    recall = service.counter_view("quay-1")["ticket_id"] + "#2"
    assert [e["shown"] for e in played[::2]] == [first_call] * 3 + [second_call] * 3 + [recall] * 3
    expect(page.locator("#latest")).not_to_have_class("flash")  # announcing is over
    assert urlsplit(page.url).path == "/board"


def test_a_silent_board_shows_each_call_at_once_highlighted_for_a_while(page, live, service) -> None:
    """?sound=0: no chime or voice to wait for, so a call is not queued behind the one before:
    the newest is shown at once, highlighted, and the highlight ends by itself."""
    page.clock.install()
    service.issue_ticket("dat-dai")
    service.issue_ticket("kinh-doanh")
    open_page(page, f"{live.url}/board?sound=0")
    latest = page.locator("#latest")
    expect(latest).not_to_have_class("flash")

    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
    expect(page.locator("#latest-ticket")).to_have_text("A001")
    expect(latest).to_have_class(re.compile(r"\bflash\b"))
    page.clock.run_for(3000)
    service.counter_action("quay-3", Action.NEXT, clerk_id="le-van-cuong")
    expect(page.locator("#latest-ticket")).to_have_text("C001")  # at once, not after the first's turn
    expect(latest).to_have_class(re.compile(r"\bflash\b"))
    page.clock.run_for(6000)  # 9 s after the first call, 6 s after the second: still highlighted
    expect(latest).to_have_class(re.compile(r"\bflash\b"))
    page.clock.run_for(3000)
    expect(latest).not_to_have_class(re.compile(r"\bflash\b"))
    expect(page.locator("#latest-ticket")).to_have_text("C001")
    assert page.evaluate("document.getElementById('player').src") == ""  # nothing was played
