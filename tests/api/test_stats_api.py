"""Figures over HTTP: today's (public, for the board) and per day (managers), with bad ranges refused."""
from __future__ import annotations

import pytest

from .conftest import act, assert_error, issue


def test_today_is_public_and_counts_what_happened(client, clerk, kiosk):
    issue(client, kiosk, "dat-dai")
    issue(client, kiosk, "ho-tich", priority="elderly")
    act(clerk, "next")
    today = client.get("/api/v1/stats/today")
    assert today.status_code == 200
    figures = today.get_json()
    assert figures["day"] == "2026-11-23" and figures["site"] == "hcc-test"
    assert figures["generated_at"] == "2026-11-23T02:00:00+00:00"
    tickets = figures["tickets"]
    assert (tickets["issued"], tickets["priority"], tickets["waiting"], tickets["at_counter"]) == (2, 1, 1, 1)
    assert figures["by_field"]["ho-tich"]["tickets"]["issued"] == 1


def test_daily_lists_each_day(client, kiosk, manager, clock):
    issue(client, kiosk)
    clock.advance(days=1)
    issue(client, kiosk)
    issue(client, kiosk)
    days = manager.get("/api/v1/stats/daily?from=2026-11-22&to=2026-11-25").get_json()
    assert [d["day"] for d in days] == ["2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25"]
    assert [d["tickets"]["issued"] for d in days] == [0, 1, 2, 0]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "invalid_input"),
        ("?from=2026-11-01", "invalid_input"),
        ("?to=2026-11-01", "invalid_input"),
        ("?from=01/11/2026&to=2026-11-30", "invalid_input"),
        ("?from=2026-11-01&to=2026-13-01", "invalid_input"),
        ("?from=2026-11-30&to=2026-11-01", "bad_range"),
        ("?from=2025-01-01&to=2026-11-30", "range_too_long"),
    ],
    ids=["none", "no-to", "no-from", "vn-format", "month-13", "reversed", "too-long"],
)
def test_daily_with_a_bad_range_is_400(manager, query, code):
    assert_error(manager.get(f"/api/v1/stats/daily{query}"), 400, code)


def test_a_year_is_allowed(manager):
    days = manager.get("/api/v1/stats/daily?from=2026-01-01&to=2026-12-31").get_json()
    assert len(days) == 365


def test_health(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "db": "ok", "mqtt": "disabled"}


def test_public_config_has_no_secrets(client):
    config = client.get("/api/v1/config").get_json()
    assert [f["id"] for f in config["fields"]] == ["dat-dai", "ho-tich", "kinh-doanh"]
    assert config["rating"]["window_s"] == 120
    assert "server" not in config and "mqtt" not in config and "clerks" not in config
