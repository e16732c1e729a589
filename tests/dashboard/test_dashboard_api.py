"""GET /manage and GET /api/v1/stats/breakdown over HTTP: who may see them, and the scripted day's numbers."""
from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import date, timedelta
from fnmatch import fnmatch
from pathlib import Path

import pytest

from queue_server.dashboard.views import STATIC_DIR

from .conftest import CUONG, assert_error

ROOT = Path(__file__).resolve().parents[2]
BREAKDOWN = "/api/v1/stats/breakdown"
ACCEPT_JSON = {"Accept": "application/json"}
BROWSER_ACCEPT = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def breakdown(manager, **params) -> dict:
    response = manager.get(BREAKDOWN, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# --- who may see what ----------------------------------------------------------------------------


def test_anonymous_gets_the_page_with_its_sign_in_form_but_no_figures(client, accounts) -> None:
    page = client.get("/manage", headers=BROWSER_ACCEPT)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'id="login"' in html and "Đăng nhập lãnh đạo" in html and "Manager sign-in" in html
    assert_error(client.get(BREAKDOWN), 401, "login_required")
    assert_error(client.get("/api/v1/exports/daily-totals?from=2026-11-23&to=2026-11-23&format=csv"), 401, "login_required")


def test_a_clerk_is_refused_the_page_the_figures_and_the_exports(clerk, manager) -> None:
    page = clerk.get("/manage", headers=BROWSER_ACCEPT)
    assert page.status_code == 403 and page.mimetype == "text/html"
    # The browser gets the page, which shows why (its script sees the clerk's role) and a way out.
    html = page.get_data(as_text=True)
    assert 'id="forbidden"' in html and "Không đủ quyền" in html and "Not allowed for your role" in html
    error = assert_error(clerk.get("/manage", headers=ACCEPT_JSON), 403, "forbidden")
    assert error["message"] == "Không đủ quyền / Not allowed for your role"
    assert_error(clerk.get(BREAKDOWN), 403, "forbidden")
    for fmt in ("csv", "xlsx", "pdf"):
        assert_error(clerk.get(f"/api/v1/exports/daily-totals?from=2026-11-23&to=2026-11-23&format={fmt}"), 403, "forbidden")
    # Each refusal is kept in the rejects log, as the API's own role checks do.
    assert manager.get("/api/v1/rejects").get_json()["counts"]["forbidden"] == 6


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, ACCEPT_JSON, {}])
def test_managers_and_admins_get_the_page(manager, server, accept) -> None:
    from tests.conftest import login

    admin = server.app.test_client()
    assert login(admin, "quantri").status_code == 200
    for who in (manager, admin):
        page = who.get("/manage", headers=accept)
        assert page.status_code == 200 and page.mimetype == "text/html"
        assert 'id="dashboard"' in page.get_data(as_text=True)
    assert admin.get(BREAKDOWN).status_code == 200


def test_the_page_links_only_local_assets_and_they_are_served(client) -> None:
    html = client.get("/manage").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"/board/static/common.js", "/manage/static/vendor/chart.umd.min.js", "/manage/static/manage.js", "/manage/static/manage.css"} <= set(assets)
    for asset in assets:
        assert not asset.startswith(("http:", "https:", "//")), f"the building has no internet: {asset}"
        if asset.startswith("/"):
            response = client.get(asset)
            assert response.status_code == 200, asset
            response.close()


def test_chart_js_is_the_vendored_v4_build_with_its_licence(client) -> None:
    script = client.get("/manage/static/vendor/chart.umd.min.js")
    assert script.status_code == 200 and script.mimetype in ("text/javascript", "application/javascript")
    body = script.get_data()
    script.close()
    readme = (STATIC_DIR / "vendor" / "README.md").read_text(encoding="utf-8")
    version = re.search(rb"Chart\.js v(4\.\d+\.\d+)", body[:200]).group(1).decode()
    assert f"| {version} |" in readme, "vendor/README.md names the version served"
    assert hashlib.sha256(body).hexdigest() in readme, "vendor/README.md has the served file's checksum"
    licence = client.get("/manage/static/vendor/chart.js.LICENSE.md")
    assert licence.status_code == 200 and "MIT License" in licence.get_data(as_text=True)
    licence.close()


def test_every_dashboard_file_is_in_the_package_data() -> None:
    """An installed (non-editable) server must ship the page, its script and Chart.js with its licence."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    patterns = package_data.get("queue_server.dashboard", []) + package_data.get("*", [])
    package_dir = STATIC_DIR.parent
    files = [path.relative_to(package_dir).as_posix() for path in STATIC_DIR.rglob("*") if path.is_file()]
    assert "static/vendor/chart.umd.min.js" in files and "static/vendor/chart.js.LICENSE.md" in files
    # setuptools' globs do not cross "/": a pattern matches only when the directories agree.
    missing = [name for name in files if not any(fnmatch(name, p) and name.count("/") == p.count("/") for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


# --- the figures -----------------------------------------------------------------------------------


def test_today_by_default_equal_to_the_service_and_right_by_hand(manager, service, scripted_day) -> None:
    data = breakdown(manager)
    monday = scripted_day.monday
    assert (data["from"], data["to"], data["today"], data["live"]) == (monday.isoformat(), monday.isoformat(), monday.isoformat(), True)
    assert data["figures"] == service.figures(monday, monday)

    tickets, ratings, dossiers = data["figures"]["tickets"], data["figures"]["ratings"], data["figures"]["dossiers"]
    assert (tickets["issued"], tickets["served"], tickets["no_show"], tickets["at_counter"], tickets["waiting"]) == (7, 2, 1, 1, 3)
    assert tickets["avg_wait_s"] == (4 + 29 + 27 + 31) * 60 / 4
    assert tickets["p90_wait_s"] == 31 * 60
    assert tickets["avg_service_s"] == (6 + 3) * 60 / 2
    assert (tickets["within_target"], tickets["within_target_pct"]) == (1, 25.0)
    assert ratings["by_level"] == {"very_satisfied": 1, "satisfied": 0, "unsatisfied": 1}
    assert (ratings["satisfaction_pct"], ratings["index"], ratings["flagged"]) == (50.0, 50.0, 1)
    assert dossiers["received"] == {"total": 5, "new": 2, "online": 0, "in_person": 2, "carried_over": 3}
    assert dossiers["resolved"] == {"total": 3, "early": 1, "on_time": 1, "late": 1}
    assert dossiers["open"] == {"total": 2, "within_time": 1, "overdue": 1}
    assert dossiers["on_time_pct"] == 66.7
    assert data["figures"]["grading_766"] == {"score_pct": 66.7, "late_pct": 33.3, "unsatisfied_pct": 0.0, "full_marks": False}

    by_field = data["figures"]["by_field"]
    assert [by_field[f]["tickets"]["issued"] for f in ("dat-dai", "ho-tich", "kinh-doanh")] == [4, 1, 2]
    assert by_field["dat-dai"]["dossiers"]["open"]["overdue"] == 1
    by_counter = data["figures"]["by_counter"]
    assert [by_counter[c]["tickets"]["served"] for c in ("quay-1", "quay-2", "quay-3")] == [1, 0, 1]
    assert by_counter["quay-2"]["tickets"]["no_show"] == 1
    assert list(data["figures"]["by_clerk"]) == [CUONG, "nguyen-van-an", "tran-thi-binh"]
    assert data["clerks"] == [
        {"id": CUONG, "name": CUONG}, {"id": "nguyen-van-an", "name": "Nguyễn Văn An"}, {"id": "tran-thi-binh", "name": "Trần Thị Bình"},
    ]
    assert [level["id"] for level in data["rating_levels"]] == ["very_satisfied", "satisfied", "unsatisfied"]


def test_the_series_of_the_scripted_day(manager, scripted_day) -> None:
    series = breakdown(manager)["series"]
    assert series["hours"] == list(range(7, 17))  # 07:30–17:00, the default opening hours
    arrivals = dict(zip(series["hours"], series["arrivals_by_hour"]))
    assert arrivals == {hour: {9: 5, 10: 2}.get(hour, 0) for hour in range(7, 17)}
    waits = dict(zip(series["hours"], series["avg_wait_by_hour_s"]))
    assert waits[9] == (4 + 29 + 27 + 31) * 60 / 4 and waits[10] is None  # A004 and C002 not called yet
    assert series["satisfaction_by_day"] == [{"day": "2026-11-23", "counted": 2, "satisfied": 1, "satisfaction_pct": 50.0}]
    assert series["clerks"] == [
        {"clerk": "nguyen-van-an", "name": "Nguyễn Văn An", "served": 1, "no_show": 0, "avg_wait_s": 240.0, "avg_service_s": 360.0,
         "ratings": 1, "satisfaction_pct": 100.0, "index": 100.0},
        {"clerk": "tran-thi-binh", "name": "Trần Thị Bình", "served": 0, "no_show": 1, "avg_wait_s": 1800.0, "avg_service_s": None,
         "ratings": 0, "satisfaction_pct": None, "index": None},
        {"clerk": CUONG, "name": CUONG, "served": 1, "no_show": 0, "avg_wait_s": 1620.0, "avg_service_s": 180.0,
         "ratings": 1, "satisfaction_pct": 0.0, "index": 0.0},
    ]


def test_a_chosen_range_friday_to_monday(manager, service, scripted_day) -> None:
    friday, monday = scripted_day.friday, scripted_day.monday
    data = breakdown(manager, **{"from": friday.isoformat(), "to": monday.isoformat()})
    assert data["figures"] == service.figures(friday, monday)
    assert data["live"] is True  # it ends today
    assert data["figures"]["tickets"]["issued"] == 8
    series = data["series"]
    assert [(d["day"], d["satisfaction_pct"]) for d in series["satisfaction_by_day"]] == [
        ("2026-11-20", 100.0), ("2026-11-21", None), ("2026-11-22", None), ("2026-11-23", 50.0),
    ]
    assert sum(series["arrivals_by_hour"]) == 8
    assert dict(zip(series["hours"], series["avg_wait_by_hour_s"]))[9] == (2 + 4 + 29 + 27 + 31) * 60 / 5

    past = breakdown(manager, **{"from": friday.isoformat(), "to": friday.isoformat()})
    assert past["live"] is False and past["figures"] == service.figures(friday, friday)
    assert past["series"]["clerks"][0]["name"] == "Nguyễn Văn An" and len(past["series"]["clerks"]) == 1


def test_only_from_given_runs_to_today(manager, scripted_day) -> None:
    data = breakdown(manager, **{"from": "2026-11-20"})
    assert (data["from"], data["to"]) == ("2026-11-20", "2026-11-23")


def test_an_empty_day_has_no_averages_and_zero_counts(manager, accounts) -> None:
    data = breakdown(manager)
    assert data["figures"]["tickets"]["issued"] == 0 and data["figures"]["tickets"]["avg_wait_s"] is None
    assert data["series"]["arrivals_by_hour"] == [0] * len(data["series"]["hours"])
    assert data["series"]["clerks"] == [] and data["series"]["satisfaction_by_day"][0]["satisfaction_pct"] is None
    assert data["figures"]["grading_766"]["score_pct"] is None


@pytest.mark.parametrize(("params", "code"), [
    ({"from": "23/11/2026"}, "invalid_input"),
    ({"from": "2026-11-23", "to": "2026-02-30"}, "invalid_input"),
    ({"to": ""}, "invalid_input"),
    ({"from": "2026-11-24", "to": "2026-11-23"}, "bad_range"),
    ({"from": "2025-11-22", "to": "2026-11-23"}, "range_too_long"),
])
def test_bad_periods_are_refused_with_a_clear_error(manager, params, code) -> None:
    error = assert_error(manager.get(BREAKDOWN, query_string=params), 400, code)
    assert " / " in error["message"], "Vietnamese / English"


def test_a_full_year_is_allowed(manager) -> None:
    last = date(2026, 11, 23)
    data = breakdown(manager, **{"from": (last - timedelta(days=365)).isoformat(), "to": last.isoformat()})
    assert len(data["series"]["satisfaction_by_day"]) == 366
