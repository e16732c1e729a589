"""Dossiers over HTTP: received with a due date or working days, paused, resumed, returned, listed."""
from __future__ import annotations

import pytest

from .conftest import act, assert_error, issue, local


def receive(clerk, code: str = "HS-1", **fields):
    body = {"code": code, "procedure": "Cấp giấy chứng nhận quyền sử dụng đất", "field": "dat-dai", "working_days": 5}
    return clerk.post("/api/v1/dossiers", json=body | fields)


def test_receive_with_working_days(clerk):
    response = receive(clerk)
    assert response.status_code == 201
    dossier = response.get_json()
    # Received Monday 2026-11-23; five working days: Tue..Fri and the next Monday.
    assert dossier["received_on"] == "2026-11-23" and dossier["due_date"] == "2026-11-30"
    assert dossier["effective_due_date"] == "2026-11-30"
    assert dossier["code"] == "HS-1" and dossier["field"] == "dat-dai" and dossier["channel"] == "in_person"
    assert dossier["procedure"] == "Cấp giấy chứng nhận quyền sử dụng đất"
    assert dossier["clerk"] == "nguyen-van-an" and dossier["returned_on"] is None
    assert dossier["paused"] is False and dossier["outcome"] == "within_time"


def test_working_days_skip_holidays(clerk, clock):
    clock.set(local(2026, 12, 29, 9))  # Tuesday; Dec 31 and Jan 1 are holidays
    assert receive(clerk, working_days=3).get_json()["due_date"] == "2027-01-05"


def test_receive_with_a_due_date(clerk):
    dossier = receive(clerk, working_days=None, due_date="2026-12-05", channel="online").get_json()
    assert dossier["due_date"] == "2026-12-05" and dossier["channel"] == "online"


def test_receive_linked_to_a_served_ticket(client, clerk, kiosk):
    ticket_id = issue(client, kiosk).get_json()["id"]
    act(clerk, "next")
    dossier = receive(clerk, ticket=ticket_id).get_json()
    assert dossier["ticket_id"] == ticket_id and dossier["counter"] == "quay-1" and dossier["clerk"] == "nguyen-van-an"


def test_a_duplicate_code_is_409(clerk):
    assert receive(clerk).status_code == 201
    assert_error(receive(clerk, procedure="Khác", working_days=10), 409, "dossier_exists")
    assert len(clerk.get("/api/v1/dossiers").get_json()) == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"working_days": "5"}, 400, "invalid_input"),
        ({"working_days": 5.5}, 400, "invalid_input"),
        ({"working_days": True}, 400, "invalid_input"),
        ({"working_days": 0}, 400, "invalid_input"),
        ({"working_days": 366}, 400, "invalid_input"),
        ({"working_days": None}, 400, "due_date_missing"),
        ({"due_date": "2026-12-05"}, 400, "due_date_ambiguous"),
        ({"working_days": None, "due_date": "05/12/2026"}, 400, "invalid_input"),
        ({"working_days": None, "due_date": "2026-12-05T10:00:00+07:00"}, 400, "invalid_input"),
        ({"working_days": None, "due_date": "2026-11-20"}, 400, "due_before_received"),
        ({"code": 123}, 400, "invalid_input"),
        ({"code": ""}, 400, "invalid_input"),
        ({"code": "HS 1"}, 400, "invalid_dossier_code"),
        ({"code": "x" * 65}, 400, "invalid_input"),
        ({"procedure": ""}, 400, "invalid_input"),
        ({"procedure": "   "}, 400, "invalid_procedure"),
        ({"field": 1}, 400, "invalid_input"),
        ({"field": "khong-co"}, 404, "unknown_field"),
        ({"channel": "fax"}, 400, "invalid_input"),
        ({"ticket": "khong-co"}, 404, "unknown_ticket"),
    ],
    ids=["days-str", "days-float", "days-bool", "days-0", "days-366", "no-due", "both", "due-vn-format",
         "due-datetime", "due-before", "code-int", "code-empty", "code-space", "code-long", "procedure-empty",
         "procedure-blank", "field-int", "field-unknown", "channel-fax", "ticket-unknown"],
)
def test_bad_dossiers_are_refused_and_not_stored(clerk, change, status, code):
    assert_error(receive(clerk, **change), status, code)
    assert clerk.get("/api/v1/dossiers").get_json() == []


@pytest.mark.parametrize("missing", ["code", "procedure", "field"])
def test_a_dossier_missing_a_field_is_400_naming_it(clerk, missing):
    body = {"code": "HS-1", "procedure": "p", "field": "dat-dai", "working_days": 5}
    del body[missing]
    error = assert_error(clerk.post("/api/v1/dossiers", json=body), 400, "invalid_input")
    assert [detail["path"] for detail in error["details"]] == [missing]


def test_a_code_that_cannot_be_addressed_is_refused(clerk):
    # Dossier codes go into URLs (/api/v1/dossiers/{code}/return): a code with '/' must either be
    # refused when received or stay reachable afterwards, never be stored and then stranded.
    response = receive(clerk, code="HS/2026/001")
    if response.status_code == 201:
        assert clerk.get("/api/v1/dossiers/HS/2026/001").status_code == 200
        assert clerk.post("/api/v1/dossiers/HS/2026/001/return").status_code == 200
    else:
        assert_error(response, 400)


# --- returning ---------------------------------------------------------------------------------


def test_return_early(clerk):
    receive(clerk)
    returned = clerk.post("/api/v1/dossiers/HS-1/return")
    assert returned.status_code == 200
    assert returned.get_json()["returned_on"] == "2026-11-23" and returned.get_json()["outcome"] == "early"


@pytest.mark.parametrize(("on", "outcome"), [("2026-11-27", "early"), ("2026-11-30", "on_time"), ("2026-12-01", "late")])
def test_return_on_a_given_day(clerk, on, outcome):
    receive(clerk)
    dossier = clerk.post("/api/v1/dossiers/HS-1/return", json={"on": on}).get_json()
    assert dossier["returned_on"] == on and dossier["outcome"] == outcome


def test_return_twice_is_409(clerk):
    receive(clerk)
    clerk.post("/api/v1/dossiers/HS-1/return")
    assert_error(clerk.post("/api/v1/dossiers/HS-1/return"), 409, "already_returned")
    assert_error(clerk.post("/api/v1/dossiers/HS-1/pause"), 409, "already_returned")


def test_a_late_open_dossier_is_overdue(clerk, clock):
    receive(clerk)
    clock.set(local(2026, 12, 1, 9))
    assert clerk.get("/api/v1/dossiers/HS-1").get_json()["outcome"] == "overdue"


# --- pausing -----------------------------------------------------------------------------------


def test_pause_and_resume_move_the_effective_due_date(clerk, clock):
    receive(clerk)  # Monday 2026-11-23, due Monday 2026-11-30
    clock.set(local(2026, 11, 24, 9))
    paused = clerk.post("/api/v1/dossiers/HS-1/pause")
    assert paused.status_code == 200 and paused.get_json()["paused"] is True
    assert paused.get_json()["pauses"] == [{"started_on": "2026-11-24", "ended_on": None}]
    assert_error(clerk.post("/api/v1/dossiers/HS-1/pause"), 409, "already_paused")

    clock.set(local(2026, 11, 26, 9))
    resumed = clerk.post("/api/v1/dossiers/HS-1/resume").get_json()
    assert resumed["paused"] is False
    assert resumed["pauses"] == [{"started_on": "2026-11-24", "ended_on": "2026-11-26"}]
    # Two working days waited (25 and 26): the deadline moves two working days; the printed one stays.
    assert resumed["due_date"] == "2026-11-30" and resumed["effective_due_date"] == "2026-12-02"
    assert_error(clerk.post("/api/v1/dossiers/HS-1/resume"), 409, "not_paused")

    clock.set(local(2026, 12, 2, 16))
    assert clerk.post("/api/v1/dossiers/HS-1/return").get_json()["outcome"] == "on_time"


def test_pause_and_resume_on_given_days(clerk, clock):
    receive(clerk)
    clock.set(local(2026, 11, 27, 9))
    clerk.post("/api/v1/dossiers/HS-1/pause", json={"on": "2026-11-24"})
    dossier = clerk.post("/api/v1/dossiers/HS-1/resume", json={"on": "2026-11-26"}).get_json()
    assert dossier["pauses"] == [{"started_on": "2026-11-24", "ended_on": "2026-11-26"}]
    assert dossier["effective_due_date"] == "2026-12-02"


def test_pause_without_a_body_uses_today(clerk):
    receive(clerk)
    dossier = clerk.post("/api/v1/dossiers/HS-1/pause").get_json()
    assert dossier["pauses"] == [{"started_on": "2026-11-23", "ended_on": None}]


@pytest.mark.parametrize(
    ("action", "body", "status", "code"),
    [
        ("pause", {"on": "24/11/2026"}, 400, "invalid_input"),
        ("pause", {"on": 20261124}, 400, "invalid_input"),
        ("pause", {"on": "2026-11-20"}, 400, "pause_before_received"),
        ("return", {"on": "2026-11-20"}, 400, "return_before_received"),
        ("return", {"on": "2026-02-30"}, 400, "invalid_input"),
        ("resume", {"on": "2026-11-24"}, 409, "not_paused"),
    ],
    ids=["pause-vn-date", "pause-int", "pause-before-received", "return-before-received", "return-no-such-day",
         "resume-unpaused"],
)
def test_bad_dates_on_dossier_actions(clerk, action, body, status, code):
    receive(clerk)
    assert_error(clerk.post(f"/api/v1/dossiers/HS-1/{action}", json=body), status, code)
    dossier = clerk.get("/api/v1/dossiers/HS-1").get_json()
    assert dossier["pauses"] == [] and dossier["returned_on"] is None


@pytest.mark.parametrize("action", ["return", "pause", "resume"])
def test_actions_on_an_unknown_dossier_are_404(clerk, action):
    assert_error(clerk.post(f"/api/v1/dossiers/khong-co/{action}"), 404, "unknown_dossier")


# --- reading -----------------------------------------------------------------------------------


def test_list_and_get(clerk, manager):
    receive(clerk, "HS-1")
    receive(clerk, "HS-2")
    receive(clerk, "HS-3")
    clerk.post("/api/v1/dossiers/HS-2/return")
    listed = clerk.get("/api/v1/dossiers").get_json()
    assert [d["code"] for d in listed] == ["HS-1", "HS-2", "HS-3"]
    assert [d["code"] for d in clerk.get("/api/v1/dossiers?open=1").get_json()] == ["HS-1", "HS-3"]
    assert [d["code"] for d in manager.get("/api/v1/dossiers?open=true").get_json()] == ["HS-1", "HS-3"]
    assert clerk.get("/api/v1/dossiers/HS-2").get_json() == listed[1]
    assert_error(clerk.get("/api/v1/dossiers/khong-co"), 404, "unknown_dossier")


def test_the_day_figures_count_dossiers(client, clerk):
    receive(clerk, "HS-1")
    receive(clerk, "HS-2", channel="online")
    clerk.post("/api/v1/dossiers/HS-1/return")
    figures = client.get("/api/v1/stats/today").get_json()["dossiers"]
    assert figures["received"]["new"] == 2 and figures["received"]["online"] == 1
    assert figures["resolved"] == {"total": 1, "early": 1, "on_time": 0, "late": 0}
    assert figures["open"]["total"] == 1
