"""Rescheduling a late dossier: the rule alone, over HTTP, in the history, on the apology slip,
and the on-time figures, which still judge the dossier by its original appointment date."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from queue_server.domain import dossiers as dossier_rules
from queue_server.domain.errors import Conflict, InvalidInput
from queue_server.domain.history import rebuild
from queue_server.domain.workdays import WorkCalendar
from tests.api.conftest import accounts, assert_error  # noqa: F401  (cheap password hashes for the role fixtures)
from tests.conftest import MONDAY_9AM
from tests.exports.conftest import pdf_text

TODAY = date(2026, 11, 23)  # the test clock's Monday
CALENDAR = WorkCalendar(holidays=frozenset({date(2026, 12, 31), date(2027, 1, 1)}))
REASON = "Chờ kết quả xác minh thực địa của Văn phòng đăng ký đất đai"


def late_dossier() -> dossier_rules.Dossier:
    return dossier_rules.receive("HS-1", "Đăng ký khai sinh", "ho-tich", "in_person", date(2026, 11, 2), date(2026, 11, 9))


# --- the rule ------------------------------------------------------------------------------------------


def test_rescheduling_sets_the_reason_and_the_new_date_and_nothing_else():
    before = late_dossier()
    after = dossier_rules.reschedule(before, f"  {REASON} ", date(2026, 11, 27), CALENDAR, TODAY)
    assert (after.delay_reason, after.new_due_on) == (REASON, date(2026, 11, 27))
    assert after.due_date == before.due_date == date(2026, 11, 9)
    assert replace(after, delay_reason=None, new_due_on=None) == before


def test_rescheduling_again_replaces_the_new_date_and_reason():
    once = dossier_rules.reschedule(late_dossier(), REASON, date(2026, 11, 27), CALENDAR, TODAY)
    twice = dossier_rules.reschedule(once, "Chờ ý kiến của Sở Tư pháp", date(2026, 12, 4), CALENDAR, TODAY)
    assert (twice.delay_reason, twice.new_due_on) == ("Chờ ý kiến của Sở Tư pháp", date(2026, 12, 4))


@pytest.mark.parametrize(("reason", "new_due_on", "code"), [
    ("", date(2026, 11, 27), "invalid_reason"),
    ("   ", date(2026, 11, 27), "invalid_reason"),
    ("x" * 501, date(2026, 11, 27), "invalid_reason"),
    (REASON, date(2026, 11, 9), "new_date_not_after_due"),  # the original date itself
    (REASON, date(2026, 11, 6), "new_date_not_after_due"),
    (REASON, date(2026, 11, 20), "new_date_in_past"),  # after the original date, but before today
    (REASON, date(2026, 11, 28), "new_date_not_working_day"),  # a Saturday
    (REASON, date(2026, 12, 31), "new_date_not_working_day"),  # a holiday
])
def test_a_new_date_or_reason_that_breaks_a_rule_is_refused(reason, new_due_on, code):
    with pytest.raises(InvalidInput) as raised:
        dossier_rules.reschedule(late_dossier(), reason, new_due_on, CALENDAR, TODAY)
    assert raised.value.code == code and " / " in raised.value.message


def test_the_reason_may_be_exactly_500_characters():
    assert len(dossier_rules.reschedule(late_dossier(), "x" * 500, date(2026, 11, 27), CALENDAR, TODAY).delay_reason) == 500


def test_a_refused_holiday_names_the_next_working_day():
    with pytest.raises(InvalidInput) as raised:
        dossier_rules.reschedule(late_dossier(), REASON, date(2026, 12, 31), CALENDAR, TODAY)
    assert raised.value.details["next_working_day"] == "2027-01-04"


def test_a_returned_dossier_cannot_be_rescheduled():
    returned = dossier_rules.return_result(late_dossier(), date(2026, 11, 20))
    with pytest.raises(Conflict) as raised:
        dossier_rules.reschedule(returned, REASON, date(2026, 11, 27), CALENDAR, TODAY)
    assert raised.value.code == "already_returned"


def test_on_time_status_still_judges_by_the_original_date():
    rescheduled = dossier_rules.reschedule(late_dossier(), REASON, date(2026, 11, 27), CALENDAR, TODAY)
    assert dossier_rules.classify_open(rescheduled, CALENDAR, TODAY) is dossier_rules.OpenStatus.OVERDUE
    returned_on_new_date = dossier_rules.return_result(rescheduled, date(2026, 11, 27))
    assert dossier_rules.classify_returned(returned_on_new_date, CALENDAR) is dossier_rules.ReturnOutcome.LATE
    assert dossier_rules.days_late(returned_on_new_date, CALENDAR) == 14


# --- over HTTP -------------------------------------------------------------------------------------------


@pytest.fixture
def seeded(service):
    """HS-1 overdue since 9 November, HS-2 still within time, HS-3 returned late."""
    service.receive_dossier("HS-1", "Đăng ký khai sinh", "ho-tich", received_on=date(2026, 11, 2), due_date=date(2026, 11, 9))
    service.receive_dossier("HS-2", "Đăng ký kết hôn", "ho-tich", received_on=date(2026, 11, 2), due_date=date(2026, 11, 30))
    service.receive_dossier("HS-3", "Cấp đổi Giấy chứng nhận", "dat-dai", received_on=date(2026, 11, 2), due_date=date(2026, 11, 6))
    service.return_dossier("HS-3", returned_on=date(2026, 11, 20))


def reschedule(client, code: str = "HS-1", **body):
    return client.post(f"/api/v1/dossiers/{code}/reschedule", json={"reason": REASON, "new_due_date": "2026-11-27"} | body)


def test_a_clerk_reschedules_a_late_dossier(server, clerk, seeded):
    response = reschedule(clerk)
    assert response.status_code == 200, response.get_data(as_text=True)
    dossier = response.get_json()
    assert dossier["code"] == "HS-1" and dossier["delay_reason"] == REASON and dossier["new_due_date"] == "2026-11-27"
    assert dossier["due_date"] == "2026-11-09" and dossier["outcome"] == "overdue"
    assert clerk.get("/api/v1/dossiers/HS-1").get_json() == dossier
    entry = [row for row in server.store.history() if row["kind"] == "dossier_rescheduled"]
    assert [(e["subject"], e["actor"]) for e in entry] == [("HS-1", "nguyen-van-an")]
    assert entry[0]["data"]["delay_reason"] == REASON and entry[0]["data"]["new_due_on"] == "2026-11-27"
    stamped = server.store.db.execute("SELECT rescheduled_at FROM dossiers WHERE code = 'HS-1'").fetchone()[0]
    assert stamped == "2026-11-23T02:00:00.000000Z"


def test_a_dossier_not_yet_late_may_be_rescheduled_ahead(clerk, seeded):
    dossier = reschedule(clerk, "HS-2", new_due_date="2026-12-03").get_json()
    assert dossier["new_due_date"] == "2026-12-03" and dossier["outcome"] == "within_time"


@pytest.mark.parametrize(("code", "body", "status", "error_code"), [
    ("HS-404", {}, 404, "unknown_dossier"),
    ("HS-3", {}, 409, "already_returned"),
    ("HS-1", {"reason": ""}, 400, "invalid_reason"),
    ("HS-1", {"reason": " \t "}, 400, "invalid_reason"),
    ("HS-1", {"reason": "x" * 501}, 400, "invalid_reason"),
    ("HS-1", {"reason": 42}, 400, "invalid_input"),
    ("HS-1", {"new_due_date": "2026-11-09"}, 400, "new_date_not_after_due"),
    ("HS-1", {"new_due_date": "2026-11-20"}, 400, "new_date_in_past"),
    ("HS-1", {"new_due_date": "2026-11-28"}, 400, "new_date_not_working_day"),
    ("HS-1", {"new_due_date": "27/11/2026"}, 400, "invalid_input"),
    ("HS-1", {"new_due_date": "2026-11-27T10:00:00+07:00"}, 400, "invalid_input"),
    ("HS-1", {"new_due_date": None}, 400, "invalid_input"),
    ("HS-1", {"on": "2026-11-27"}, 400, "invalid_input"),
], ids=["unknown", "returned", "reason-empty", "reason-blank", "reason-501", "reason-number", "not-after-due", "in-past",
        "saturday", "vn-date-format", "datetime", "no-date", "unknown-key"])
def test_a_bad_reschedule_is_refused_and_changes_nothing(server, clerk, seeded, code, body, status, error_code):
    history_before = list(server.store.history())
    dossiers_before = clerk.get("/api/v1/dossiers").get_json()
    assert_error(reschedule(clerk, code, **body), status, error_code)
    assert clerk.get("/api/v1/dossiers").get_json() == dossiers_before
    assert list(server.store.history()) == history_before


def test_a_missing_field_or_a_body_that_is_not_json_is_refused(clerk, seeded):
    assert_error(clerk.post("/api/v1/dossiers/HS-1/reschedule", json={"reason": REASON}), 400, "invalid_input")
    assert_error(clerk.post("/api/v1/dossiers/HS-1/reschedule", data="reason=x", content_type="text/plain"), 415)


def test_nobody_signed_in_gets_401_and_a_device_token_is_not_a_clerk(client, kiosk, seeded):
    assert_error(reschedule(client), 401, "login_required")
    assert_error(client.post("/api/v1/dossiers/HS-1/reschedule", json={"reason": REASON, "new_due_date": "2026-11-27"},
                             headers=kiosk), 401, "login_required")


# --- figures: the dossier stays late ----------------------------------------------------------------------


def test_rescheduling_changes_no_figure_and_a_return_on_the_new_date_is_still_late(service, clerk, seeded, clock):
    first, last = date(2026, 11, 1), TODAY
    figures_before = service.figures(first, last)
    daily_before = service.stats_daily(first, last)
    late_list_before = clerk.get("/api/v1/dossiers/late").get_json()
    assert reschedule(clerk).status_code == 200
    assert service.figures(first, last) == figures_before
    assert service.stats_daily(first, last) == daily_before
    late_list = clerk.get("/api/v1/dossiers/late").get_json()
    assert (late_list["overdue"], late_list["returned_late"]) == (late_list_before["overdue"], late_list_before["returned_late"]) == (1, 1)
    overdue = late_list["dossiers"][0]
    assert overdue["code"] == "HS-1" and overdue["new_due_date"] == "2026-11-27" and overdue["delay_reason"] == REASON

    clock.advance(days=4)  # Friday 27 November, the promised new date
    returned = clerk.post("/api/v1/dossiers/HS-1/return", json={}).get_json()
    assert returned["outcome"] == "late" and returned["returned_on"] == "2026-11-27"
    assert returned["delay_reason"] == REASON  # kept with the record after the return
    resolved = service.figures(first, date(2026, 11, 27))["dossiers"]["resolved"]
    assert resolved == {"total": 2, "early": 0, "on_time": 0, "late": 2}
    assert service.figures_from_history(first, date(2026, 11, 27)) == service.figures(first, date(2026, 11, 27))


def test_the_history_replays_the_reschedule(server, clerk, seeded):
    reschedule(clerk)
    _, _, dossiers = rebuild(server.store.history())
    replayed = next(d for d in dossiers if d.code == "HS-1")
    assert replayed == server.store.get_dossier("HS-1")
    assert (replayed.delay_reason, replayed.new_due_on) == (REASON, date(2026, 11, 27))


# --- the apology slip ---------------------------------------------------------------------------------------


def test_the_apology_slip_prints_the_stored_reason_and_new_date(clerk, seeded, tmp_path):
    reschedule(clerk)
    response = clerk.get("/api/v1/dossiers/HS-1/apology.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf", response.get_data(as_text=True)[:300]
    text = pdf_text(response.get_data(), tmp_path)
    for phrase in ("PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ", "Mã hồ sơ: HS-1", "Đăng ký khai sinh",
                   "09/11/2026", f"Lý do chậm trễ: {REASON}", "ngày 27 tháng 11 năm 2026"):
        assert phrase in text, phrase


def test_stored_values_win_over_query_parameters(clerk, seeded, tmp_path):
    reschedule(clerk)
    response = clerk.get("/api/v1/dossiers/HS-1/apology.pdf?reason=Lý do khác&new_date=2026-12-04")
    text = pdf_text(response.get_data(), tmp_path)
    assert f"Lý do chậm trễ: {REASON}" in text and "ngày 27 tháng 11 năm 2026" in text
    assert "Lý do khác" not in text and "04/12/2026" not in text


def test_a_dossier_never_rescheduled_still_takes_query_parameters(clerk, seeded, tmp_path):
    response = clerk.get("/api/v1/dossiers/HS-1/apology.pdf?reason=Chờ ý kiến của Sở Tư pháp&new_date=2026-11-27")
    assert "Lý do chậm trễ: Chờ ý kiến của Sở Tư pháp" in pdf_text(response.get_data(), tmp_path)
    assert_error(clerk.get("/api/v1/dossiers/HS-1/apology.pdf"), 400, "invalid_input")


def test_a_slip_whose_new_date_has_passed_asks_for_a_new_reschedule(clerk, seeded, clock):
    reschedule(clerk)
    clock.advance(days=7)  # Monday 30 November: the promised 27th has gone by, still not returned
    assert_error(clerk.get("/api/v1/dossiers/HS-1/apology.pdf"), 400, "invalid_new_date")
    assert reschedule(clerk, new_due_date="2026-12-02").status_code == 200
    assert clerk.get("/api/v1/dossiers/HS-1/apology.pdf").status_code == 200


# --- the migration ------------------------------------------------------------------------------------------


def test_a_database_from_before_the_migration_keeps_its_dossiers_and_sessions(tmp_path, monkeypatch):
    from queue_server import store as store_module
    from queue_server.store import MIGRATIONS, Store

    step = MIGRATIONS.index(store_module._m007_reschedule_sessions_export_runs)
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:step])
    old = Store(tmp_path / "motcua.sqlite3")
    old.db["dossiers"].insert({"code": "HS-OLD", "procedure": "Đăng ký khai sinh", "field_id": "ho-tich", "channel": "in_person",
                               "received_on": "2026-11-02", "due_date": "2026-11-09", "pauses": "[]"})
    with old.write():
        old.add_user("quanly", "manager", "hash", MONDAY_9AM)
    old.close()

    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    new = Store(tmp_path / "motcua.sqlite3")
    try:
        dossier = new.get_dossier("HS-OLD")
        assert (dossier.delay_reason, dossier.new_due_on, dossier.due_date) == (None, None, date(2026, 11, 9))
        # Sessions signed before the upgrade carry no epoch: 0, which every account starts with.
        assert new.get_user("quanly")["session_epoch"] == 0
        assert new.exported_formats(TODAY) == set()
    finally:
        new.close()
