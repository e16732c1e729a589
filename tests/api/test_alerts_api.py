"""GET /api/v1/alerts: managers only, exactly the shape the dashboard reads, and read only."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from queue_server.alerts_runner import AlertRunner

from .conftest import assert_error

ACTIVE_KEYS = {"id", "rule", "kind", "subject", "severity", "message", "since", "details"}


def evaluate(server) -> None:
    AlertRunner(server.service).evaluate()


@pytest.mark.parametrize(("who", "status", "code"), [("anon", 401, "login_required"), ("clerk", 403, "forbidden"),
                                                     ("kiosk", 401, "login_required")])
def test_only_managers_see_alerts(caller, who, status, code) -> None:
    client, headers = caller(who)
    error = assert_error(client.get("/api/v1/alerts", headers=headers), status, code)
    assert " / " in error["message"]  # Vietnamese / English


def test_no_alerts_is_two_empty_lists(manager) -> None:
    response = manager.get("/api/v1/alerts")
    assert response.status_code == 200
    assert response.get_json() == {"active": [], "recent": []}


def test_the_shape_of_active_and_recent_alerts(server, manager, clock) -> None:
    service = server.service
    service.record_device_status("kiosk-02", "offline")
    service.record_printer_state("kiosk-01", "paper_out", "Hết giấy")
    clock.advance(minutes=6)
    evaluate(server)
    clock.advance(minutes=1)
    service.record_printer_state("kiosk-01", "ok", None)
    evaluate(server)

    body = manager.get("/api/v1/alerts").get_json()
    assert set(body) == {"active", "recent"}
    [active] = body["active"]
    assert set(active) == ACTIVE_KEYS
    assert (active["rule"], active["kind"], active["subject"], active["severity"]) == (
        "device-offline", "device_offline", "kiosk-02", "critical")
    assert active["message"] == {"vi": "Thiết bị kiosk-02 mất kết nối từ 09:00", "en": "Device kiosk-02 offline since 09:00"}
    assert isinstance(active["id"], int)
    assert datetime.fromisoformat(active["since"]) == clock.now() - timedelta(minutes=1)  # raised at the evaluation
    assert active["details"]["device"] == "kiosk-02" and active["details"]["grace_min"] == 5

    [recent] = body["recent"]
    assert set(recent) == ACTIVE_KEYS | {"cleared_at"}
    assert (recent["rule"], recent["kind"], recent["subject"]) == ("printer", "printer_problem", "kiosk-01")
    assert datetime.fromisoformat(recent["cleared_at"]) == clock.now()
    assert recent["message"]["vi"].startswith("Máy in của kiosk-01: hết giấy")


def test_reading_alerts_changes_nothing(server, manager) -> None:
    # The rules hold (a printer is out of paper), but only the alert thread evaluates them.
    server.service.record_printer_state("kiosk-01", "paper_out", None)
    for _ in range(2):
        assert manager.get("/api/v1/alerts").get_json() == {"active": [], "recent": []}
    assert server.store.db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 0


def test_other_methods_are_refused_as_json(manager) -> None:
    assert_error(manager.post("/api/v1/alerts", json={}), 405, "method_not_allowed")
