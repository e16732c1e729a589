"""The manager dashboard in a real Chromium against a real waitress server: sign-in, figures equal to
the API, charts drawn, exports, late dossiers with their apology slip, live updates, alerts, screenshots."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from queue_server.domain.counters import Action
from tests.conftest import PASSWORD

from .conftest import AN

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHARTS = ("arrivals", "wait", "satisfaction", "clerks")
TABLES = {"table-field": "by_field", "table-counter": "by_counter", "table-clerk": "by_clerk"}
# Shaped as GET /api/v1/alerts answers: instants in local ISO, `cleared_at` only in `recent`.
ALERTS = {
    "active": [{
        "id": 7, "rule": "printer", "kind": "printer_problem", "subject": "kiosk-01", "severity": "critical",
        "message": {"vi": "Máy in kiosk-01 hết giấy", "en": "kiosk-01 printer out of paper"},
        "since": "2026-11-23T09:40:00+07:00", "details": {"printer": "paper_out"},
    }],
    "recent": [{
        "id": 5, "rule": "wait", "kind": "wait_over_target", "subject": "dat-dai", "severity": "warning",
        "message": {"vi": "Chờ quá 30 phút ở Đất đai", "en": "Waits over 30 min in Land"},
        "since": "2026-11-23T09:20:00+07:00", "cleared_at": "2026-11-23T09:35:00+07:00", "details": {},
    }],
}


@pytest.fixture
def page(browser):
    """A desk monitor's tab; console errors and failed requests are collected for the test to check."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.problems = []
    # Refusals the page expects (not signed in yet; no alerts API on this server) are not problems.
    expected_refusals = {("/api/v1/me", 401), ("/api/v1/alerts", 404)}
    tab.on("response", lambda response: tab.problems.append(f"{response.status} {response.url}")
           if response.status >= 400 and (urlsplit(response.url).path, response.status) not in expected_refusals else None)
    tab.on("console", lambda message: tab.problems.append(message.text)
           if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    tab.on("pageerror", lambda error: tab.problems.append(str(error)))
    yield tab
    context.close()


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full_page)
    print(f"screenshot: {path}")
    return path


def alerts_answer(page, status: int, body: dict | None = None) -> None:
    """GET /api/v1/alerts as another part of the server answers it (it is not the dashboard's)."""
    page.route("**/api/v1/alerts", lambda route: route.fulfill(
        status=status, content_type="application/json",
        body=json.dumps(body if body is not None else {"error": {"code": "not_found", "message": "Not Found"}}),
    ))


def sign_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/manage")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login button[type=submit]")


def loaded(page) -> str:
    page.wait_for_function("document.body.dataset.loaded !== undefined")
    return page.evaluate("document.body.dataset.loaded")


def api(page, path: str) -> dict:
    """The same request from the same signed-in browser context."""
    response = page.request.get(page.url.split("/manage")[0] + path)
    assert response.ok, response.text()
    return response.json()


def pick(figures: dict, path: str):
    for key in path.split("."):
        figures = figures[key]
    return figures


def shown_cells(page, table_id: str) -> dict:
    """{(row group, column key): raw value} for every figure cell of a table."""
    cells = page.eval_on_selector_all(
        f"#{table_id} tbody td[data-key]",
        "cells => cells.map(c => [c.closest('tr').dataset.group, c.dataset.key, c.dataset.value])",
    )
    return {(group, key): json.loads(value) for group, key, value in cells}


def chart_data(page, name: str) -> dict:
    return page.evaluate(
        """name => { const chart = Chart.getChart(document.getElementById('chart-' + name));
                     return {labels: chart.data.labels, datasets: chart.data.datasets.map(d => d.data)}; }""",
        name,
    )


def painted_pixels(page, name: str) -> int:
    """Pixels the chart painted on its canvas (a blank canvas has none)."""
    return page.evaluate(
        """name => { const canvas = document.getElementById('chart-' + name);
                     const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                     let painted = 0;
                     for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                     return painted; }""",
        name,
    )


def test_a_manager_sees_the_figures_of_the_api_drawn_and_tabled(page, live, service, scripted_day, accounts) -> None:
    alerts_answer(page, 200, ALERTS)
    sign_in(page, live.url, "quanly")
    expect(page.locator("#dashboard")).to_be_visible()
    loaded(page)
    data = api(page, "/api/v1/stats/breakdown")
    figures = data["figures"]

    # Key figures and the Decision 766 panel: every one as the API says, and readable.
    for element in page.locator("[data-stat]").all():
        key = element.get_attribute("data-stat")
        assert json.loads(element.get_attribute("data-value")) == pick(figures, key), key
    expect(page.locator("[data-stat='tickets.issued']")).to_have_text("7")
    expect(page.locator("[data-stat='tickets.avg_wait_s']")).to_have_text("22:45")  # 1365 s
    expect(page.locator("[data-stat='ratings.satisfaction_pct']")).to_have_text("50%")
    expect(page.locator("#grading-score")).to_have_text("66,7%")
    expect(page.locator("#grading-marks")).to_contain_text("Chưa đạt điểm tối đa")
    expect(page.locator("#live")).to_contain_text("Trực tiếp")

    # Tables per field, counter and clerk, each with its whole-centre row.
    levels = [level["id"] for level in data["rating_levels"]]
    for table_id, breakdown_key in TABLES.items():
        cells = shown_cells(page, table_id)
        groups = list(figures[breakdown_key])
        assert {group for group, _ in cells} == {*groups, "_total"}, table_id
        for (group, key), value in cells.items():
            source = {"tickets": figures["tickets"], "ratings": figures["ratings"]} if group == "_total" else figures[breakdown_key][group]
            assert value == pick(source, key), (table_id, group, key)
        assert {key for _, key in cells} >= {"tickets.served", "tickets.p90_wait_s", "ratings.index", *(f"ratings.by_level.{lv}" for lv in levels)}
    dossier_cells = shown_cells(page, "table-dossiers")
    for (group, key), value in dossier_cells.items():
        source = figures["dossiers"] if group == "_total" else figures["by_field"][group]["dossiers"]
        assert value == pick(source, key), (group, key)
    expect(page.locator("#table-dossiers tr[data-group='_total'] td[data-key='resolved.late']")).to_have_text("1")
    expect(page.locator("#table-clerk tr[data-group='nguyen-van-an']")).to_contain_text("Nguyễn Văn An")

    # The four charts: the API's series, painted.
    series = data["series"]
    hours = [f"{hour:02d}h" for hour in series["hours"]]
    assert chart_data(page, "arrivals") == {"labels": hours, "datasets": [series["arrivals_by_hour"]]}
    assert chart_data(page, "wait") == {"labels": hours, "datasets": [[None if s is None else round(s / 60, 1) for s in series["avg_wait_by_hour_s"]]]}
    assert chart_data(page, "satisfaction") == {"labels": ["23/11"], "datasets": [[50.0]]}
    assert chart_data(page, "clerks") == {
        "labels": [clerk["name"] for clerk in series["clerks"]],
        "datasets": [[clerk["served"] for clerk in series["clerks"]], [clerk["satisfaction_pct"] for clerk in series["clerks"]]],
    }
    for name in CHARTS:
        assert painted_pixels(page, name) > 2000, f"chart {name} is blank"

    # Exports of the chosen period, fetched as the signed-in manager.
    for fmt, mimetype in (("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats"), ("pdf", "application/pdf")):
        href = page.get_attribute(f"#export-{fmt}", "href")
        assert href == f"/api/v1/exports/daily-totals?from=2026-11-23&to=2026-11-23&format={fmt}"
        response = page.request.get(live.url + href)
        assert response.status == 200 and response.headers["content-type"].startswith(mimetype), fmt

    # Late dossiers: the overdue one offers its apology slip; alerts as the alerts API gives them.
    overdue = page.locator("#late .late-row[data-code='HS-005']")
    expect(overdue).to_contain_text("Quá hạn")
    expect(overdue.locator("form.apology")).to_be_visible()
    expect(page.locator("#late .late-row[data-code='HS-003']")).to_contain_text("Trả trễ")
    expect(page.locator("#late .late-row[data-code='HS-003'] form")).to_have_count(0)  # returned: no slip owed
    expect(page.locator("#alerts .alert[data-severity='critical']")).to_contain_text("Máy in kiosk-01 hết giấy")
    expect(page.locator("#alerts .alert.cleared")).to_contain_text("Waits over 30 min in Land")
    expect(page.locator("#alerts .alert.cleared .when")).to_contain_text("23/11 09:20 → 23/11 09:35")
    screenshot(page, "dashboard-1920x1080.png")

    # Live: a ticket issued and one served show up without a reload.
    page.evaluate("window.__sameDocument = true")
    page.wait_for_function("document.body.dataset.connection === 'live'")
    service.issue_ticket("ho-tich")
    service.counter_action("quay-1", Action.NEXT, clerk_id=AN)
    expect(page.locator("[data-stat='tickets.issued']")).to_have_attribute("data-value", "8")
    expect(page.locator("#table-field tr[data-group='ho-tich'] td[data-key='tickets.issued']")).to_have_text("2")
    expect(page.locator("#table-counter tr[data-group='quay-1'] td[data-key='tickets.issued']")).to_have_text("2")
    assert page.evaluate("window.__sameDocument"), "updated in place"
    assert chart_data(page, "arrivals")["datasets"][0][hours.index("10h")] == 3

    page.set_viewport_size({"width": 820, "height": 1180})
    kpis, side = page.locator("#kpis").bounding_box(), page.locator(".side").bounding_box()
    assert side["x"] == kpis["x"] and side["y"] > kpis["y"], "one column: the side panels under the key figures"
    screenshot(page, "dashboard-820-full.png", full_page=True)
    assert not page.problems, page.problems


def test_a_chosen_period_and_an_apology_slip(page, live, service, scripted_day, accounts) -> None:
    service.receive_dossier("HS-006", "Đăng ký kết hôn", "ho-tich", due_date=date(2026, 11, 19), received_on=date(2026, 11, 9))
    service.reschedule_dossier("HS-006", "Chờ xác minh", date(2026, 11, 27))
    alerts_answer(page, 404)
    sign_in(page, live.url, "quanly")
    first = loaded(page)
    expect(page.locator("#alerts")).to_have_attribute("data-state", "absent")
    expect(page.locator("#alerts")).to_have_text("—")
    page.fill("#from", "2026-11-20")
    page.fill("#to", "2026-11-23")
    page.click("#period button[type=submit]")
    page.wait_for_function("first => document.body.dataset.loaded !== first && document.body.dataset.loaded.startsWith('2026-11-20..')", arg=first)
    data = api(page, "/api/v1/stats/breakdown?from=2026-11-20&to=2026-11-23")
    expect(page.locator("[data-stat='tickets.issued']")).to_have_attribute("data-value", "8")
    assert chart_data(page, "satisfaction") == {"labels": ["20/11", "21/11", "22/11", "23/11"], "datasets": [[100.0, None, None, 50.0]]}
    assert shown_cells(page, "table-clerk")[("nguyen-van-an", "tickets.served")] == data["figures"]["by_clerk"]["nguyen-van-an"]["tickets"]["served"] == 2
    assert page.get_attribute("#export-pdf", "href").endswith("from=2026-11-20&to=2026-11-23&format=pdf")
    assert "from=2026-11-20&to=2026-11-23" in page.url, "a reload keeps the period"

    # A period in the past is not live.
    page.fill("#from", "2026-11-20")
    page.fill("#to", "2026-11-20")
    page.click("#period button[type=submit]")
    expect(page.locator("#live")).to_have_attribute("data-live", "false")
    expect(page.locator("[data-stat='tickets.issued']")).to_have_attribute("data-value", "1")
    # A period backwards is refused in the page, in both languages.
    page.fill("#from", "2026-11-23")
    page.fill("#to", "2026-11-20")
    page.click("#period button[type=submit]")
    expect(page.locator("#message")).to_contain_text("'From' must not be after 'To'")

    # Given a new date already: the slip is a plain link, what it prints is on record.
    ready = page.locator("#late .late-row[data-code='HS-006']")
    expect(ready).to_contain_text("Hẹn lại 27/11/2026: Chờ xác minh")
    expect(ready.locator("form")).to_have_count(0)
    expect(ready.locator("a.button")).to_have_attribute("href", "/api/v1/dossiers/HS-006/apology.pdf")

    # Not yet: the form records the new date and the reason on the dossier, then opens the slip.
    form = page.locator("#late .late-row[data-code='HS-005'] form.apology")
    form.locator("input[name=reason]").fill("Chờ kết quả đo đạc")
    form.locator("input[name=new_date]").fill("2026-11-30")
    with page.expect_popup() as popup_info:
        form.locator("button").click()
    popup = popup_info.value
    popup.wait_for_url("**/api/v1/dossiers/HS-005/apology.pdf")
    recorded = api(page, "/api/v1/dossiers/HS-005")
    assert recorded["delay_reason"] == "Chờ kết quả đo đạc" and recorded["new_due_date"] == "2026-11-30"
    slip = page.request.get(popup.url)
    assert slip.status == 200 and slip.headers["content-type"] == "application/pdf" and slip.body().startswith(b"%PDF")
    done = page.locator("#late .late-row[data-code='HS-005']")
    expect(done).to_contain_text("Hẹn lại 30/11/2026: Chờ kết quả đo đạc")  # the list shows what is on record
    expect(done.locator("form")).to_have_count(0)
    assert not page.problems, page.problems


def test_a_clerk_signing_in_is_told_the_page_is_not_for_them(page, live, accounts) -> None:
    alerts_answer(page, 404)
    sign_in(page, live.url, "nguyen-van-an")
    expect(page.locator("#forbidden")).to_be_visible()
    expect(page.locator("#forbidden")).to_contain_text("Không đủ quyền")
    expect(page.locator("#forbidden")).to_contain_text("Not allowed for your role")
    expect(page.locator("#dashboard")).to_be_hidden()
    response = page.reload()
    assert response.status == 403
    expect(page.locator("#forbidden")).to_be_visible()
    screenshot(page, "dashboard-clerk-403.png")
    page.click("#forbidden-logout")
    expect(page.locator("#login")).to_be_visible()


def test_the_alerts_panel_shows_what_the_alerts_api_answers(page, live, accounts) -> None:
    """Whatever this server's GET /api/v1/alerts answers (200 with alerts, or 404 where it has none), the panel agrees."""
    sign_in(page, live.url, "quanly")
    loaded(page)
    response = page.request.get(f"{live.url}/api/v1/alerts")
    panel = page.locator("#alerts")
    if response.status == 404:
        expect(panel).to_have_attribute("data-state", "absent")
        expect(panel).to_have_text("—")
    else:
        assert response.status == 200, response.text()
        expect(panel).to_have_attribute("data-state", "ok")
        expect(panel.locator(".alert:not(.cleared)")).to_have_count(len(response.json()["active"]))
        if not response.json()["active"]:
            expect(panel).to_contain_text("Không có cảnh báo đang diễn ra")
