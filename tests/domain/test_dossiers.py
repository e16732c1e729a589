"""Tests for dossier rules: appointment dates, pauses, early / on-time / late by local date."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from queue_server.domain.dossiers import (
    Channel,
    Dossier,
    OpenStatus,
    Pause,
    ReturnOutcome,
    classify_open,
    classify_returned,
    days_late,
    due_date_for,
    effective_due_date,
    pause,
    paused_working_days,
    receive,
    resume,
    return_result,
)
from queue_server.domain.errors import Conflict, InvalidInput
from queue_server.domain.timeutil import local_day
from queue_server.domain.workdays import WorkCalendar

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
NATIONAL_DAY_2026 = date(2026, 9, 2)  # Wednesday
# Tết Nguyên đán 2027: Friday 5 to Thursday 11 February.
TET_2027 = frozenset(date(2027, 2, 5) + timedelta(days=offset) for offset in range(7))
CALENDAR = WorkCalendar(holidays=frozenset({NATIONAL_DAY_2026}) | TET_2027)

# A week in November 2026 with no holiday: Thu 19, Fri 20, Mon 23, Tue 24, Wed 25, Thu 26, Fri 27.
THU_19 = date(2026, 11, 19)
FRI_20 = date(2026, 11, 20)
SAT_21 = date(2026, 11, 21)
SUN_22 = date(2026, 11, 22)
MON_23 = date(2026, 11, 23)
TUE_24 = date(2026, 11, 24)
WED_25 = date(2026, 11, 25)
THU_26 = date(2026, 11, 26)
FRI_27 = date(2026, 11, 27)
MON_30 = date(2026, 11, 30)

LAND_DOSSIER_CODE = "000.00.01.H12-261119-0001"


def land_dossier(received_on: date = THU_19, due_date: date = TUE_24, **extra) -> Dossier:
    """A land (Đất đai) dossier received at a counter; due Tuesday unless told otherwise."""
    return receive(
        LAND_DOSSIER_CODE,
        "Đăng ký biến động đất đai",
        "dat_dai",
        Channel.IN_PERSON,
        received_on,
        due_date,
        **extra,
    )


def land_dossier_with_code(code) -> Dossier:
    return receive(code, "Đăng ký biến động đất đai", "dat_dai", Channel.IN_PERSON, THU_19, TUE_24)


def outcome_if_returned_on(dossier: Dossier, returned_on: date) -> ReturnOutcome:
    return classify_returned(return_result(dossier, returned_on), CALENDAR)


def local(text: str) -> date:
    """The centre's local date of a UTC instant written as ISO-8601 with Z."""
    return local_day(datetime.fromisoformat(text.replace("Z", "+00:00")), HANOI)


# --- due_date_for -----------------------------------------------------------------


def test_due_date_in_working_days_skips_the_weekend():
    assert due_date_for(FRI_20, CALENDAR, working_days=3) == WED_25


def test_due_date_in_working_days_skips_a_weekend_and_national_day():
    # Fri 28 Aug: Mon 31 (1), Tue 1 Sep (2), Wed 2 Sep National Day, Thu 3 (3), Fri 4 (4).
    assert due_date_for(date(2026, 8, 28), CALENDAR, working_days=4) == date(2026, 9, 4)


def test_due_date_in_working_days_skips_tet():
    # Wed 3 Feb 2027: Thu 4 (1), Tết Fri 5 .. Thu 11, Fri 12 (2), Mon 15 (3).
    assert due_date_for(date(2027, 2, 3), CALENDAR, working_days=3) == date(2027, 2, 15)


def test_due_date_counts_from_the_local_day_of_receipt_not_the_utc_day():
    # 17:30Z on Thursday is 00:30 on Friday in Hà Nội, so three working days end on Wednesday.
    received_on = local("2026-11-19T17:30:00Z")
    assert received_on == FRI_20
    assert due_date_for(received_on, CALENDAR, working_days=3) == WED_25


def test_a_due_date_typed_by_the_clerk_is_kept_as_given():
    assert due_date_for(THU_19, CALENDAR, due_date=FRI_27) == FRI_27
    assert due_date_for(THU_19, CALENDAR, due_date=THU_19) == THU_19


def test_due_date_needs_working_days_or_a_date():
    with pytest.raises(InvalidInput) as raised:
        due_date_for(THU_19, CALENDAR)
    assert raised.value.code == "due_date_missing"


def test_due_date_refuses_both_working_days_and_a_date():
    with pytest.raises(InvalidInput) as raised:
        due_date_for(THU_19, CALENDAR, working_days=3, due_date=TUE_24)
    assert raised.value.code == "due_date_ambiguous"


@pytest.mark.parametrize("working_days", [0, -1, 366, True, 2.5, "3"])
def test_due_date_refuses_working_days_outside_one_to_365(working_days):
    with pytest.raises(InvalidInput) as raised:
        due_date_for(THU_19, CALENDAR, working_days=working_days)
    assert raised.value.code == "invalid_working_days"
    assert raised.value.status == 400


def test_due_date_accepts_the_limits_of_one_and_365_working_days():
    assert due_date_for(THU_19, CALENDAR, working_days=1) == FRI_20
    assert due_date_for(THU_19, CALENDAR, working_days=365) > THU_19 + timedelta(days=365)


def test_due_date_refuses_a_date_before_receipt():
    with pytest.raises(InvalidInput) as raised:
        due_date_for(THU_19, CALENDAR, due_date=THU_19 - timedelta(days=1))
    assert raised.value.code == "due_before_received"


def test_due_date_refuses_a_datetime_instead_of_a_local_date():
    with pytest.raises(InvalidInput) as raised:
        due_date_for(datetime(2026, 11, 19, 9, tzinfo=timezone.utc), CALENDAR, working_days=3)
    assert raised.value.code == "invalid_date"


# --- receive ----------------------------------------------------------------------


def test_receiving_records_the_dossier_with_its_appointment_date():
    dossier = land_dossier(ticket_id="t-42", counter_id="3", clerk_id="clerk-7")
    assert dossier == Dossier(
        code=LAND_DOSSIER_CODE,
        procedure="Đăng ký biến động đất đai",
        field_id="dat_dai",
        channel=Channel.IN_PERSON,
        received_on=THU_19,
        due_date=TUE_24,
        ticket_id="t-42",
        counter_id="3",
        clerk_id="clerk-7",
    )
    assert not dossier.is_returned
    assert dossier.open_pause is None


def test_receiving_accepts_the_channel_as_its_text_value():
    dossier = receive("HS-1", "Đăng ký khai sinh", "ho_tich", "online", THU_19, THU_19)
    assert dossier.channel is Channel.ONLINE


def test_receiving_refuses_an_unknown_channel():
    with pytest.raises(InvalidInput) as raised:
        receive("HS-1", "Đăng ký khai sinh", "ho_tich", "fax", THU_19, THU_19)
    assert raised.value.code == "invalid_channel"
    assert raised.value.details["allowed"] == ["in_person", "online"]


@pytest.mark.parametrize(
    "code",
    [
        "",
        " ",
        "HS 001",
        "HS-001 ",
        "HS\t001",
        "HS\n001",
        "HS\x00001",
        "HS\u200b001",  # zero-width space: invisible on a receipt
        "HS\u00a0001",  # no-break space
        "H" * 65,
        None,
        12345,
    ],
)
def test_receiving_refuses_an_invalid_dossier_code(code):
    with pytest.raises(InvalidInput) as raised:
        land_dossier_with_code(code)
    assert raised.value.code == "invalid_dossier_code"
    assert raised.value.message.count(" / ") == 1


@pytest.mark.parametrize("code", ["H" * 64, "000.00.01.H12-261119-0001", "HS-Đất-01", "A"])
def test_receiving_accepts_a_dossier_code_of_up_to_64_visible_characters(code):
    assert land_dossier_with_code(code).code == code


@pytest.mark.parametrize(
    ("procedure", "field_id", "error_code"),
    [("", "dat_dai", "invalid_procedure"), ("Đăng ký", "  ", "invalid_field")],
)
def test_receiving_refuses_a_blank_procedure_or_field(procedure, field_id, error_code):
    with pytest.raises(InvalidInput) as raised:
        receive("HS-1", procedure, field_id, Channel.IN_PERSON, THU_19, TUE_24)
    assert raised.value.code == error_code


def test_receiving_refuses_a_due_date_before_receipt():
    with pytest.raises(InvalidInput) as raised:
        land_dossier(received_on=TUE_24, due_date=MON_23)
    assert raised.value.code == "due_before_received"


def test_receiving_refuses_a_datetime_instead_of_a_local_date():
    with pytest.raises(InvalidInput) as raised:
        land_dossier(received_on=datetime(2026, 11, 19, 9, tzinfo=HANOI))
    assert raised.value.code == "invalid_date"
    assert raised.value.details == {"field": "received_on"}


def test_a_dossier_cannot_be_changed_in_place():
    dossier = land_dossier()
    with pytest.raises(dataclasses.FrozenInstanceError):
        dossier.due_date = FRI_27  # type: ignore[misc]


# --- pause and resume -------------------------------------------------------------


def test_pausing_returns_a_new_dossier_and_leaves_the_original_alone():
    dossier = land_dossier()
    paused = pause(dossier, FRI_20)
    assert paused.pauses == (Pause(started_on=FRI_20),)
    assert paused.open_pause == Pause(started_on=FRI_20)
    assert dossier.pauses == ()


def test_resuming_closes_the_open_pause():
    dossier = resume(pause(land_dossier(), FRI_20), TUE_24)
    assert dossier.pauses == (Pause(started_on=FRI_20, ended_on=TUE_24),)
    assert dossier.open_pause is None


def test_pausing_twice_without_resuming_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        pause(pause(land_dossier(), FRI_20), MON_23)
    assert raised.value.code == "already_paused"
    assert raised.value.status == 409


def test_pausing_a_returned_dossier_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        pause(return_result(land_dossier(), MON_23), TUE_24)
    assert raised.value.code == "already_returned"
    assert raised.value.message == "Hồ sơ đã trả kết quả / Dossier already returned"


def test_pausing_before_receipt_is_refused():
    with pytest.raises(InvalidInput) as raised:
        pause(land_dossier(), THU_19 - timedelta(days=1))
    assert raised.value.code == "pause_before_received"


def test_pausing_before_the_last_resume_is_refused():
    resumed = resume(pause(land_dossier(), FRI_20), TUE_24)
    with pytest.raises(InvalidInput) as raised:
        pause(resumed, MON_23)
    assert raised.value.code == "pause_before_last_resume"


def test_pausing_again_on_the_day_of_the_last_resume_is_allowed():
    resumed = resume(pause(land_dossier(), FRI_20), MON_23)
    assert pause(resumed, MON_23).open_pause == Pause(started_on=MON_23)


def test_resuming_a_dossier_that_is_not_paused_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        resume(land_dossier(), MON_23)
    assert raised.value.code == "not_paused"


def test_resuming_a_returned_dossier_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        resume(return_result(pause(land_dossier(), FRI_20), MON_23), TUE_24)
    assert raised.value.code == "already_returned"


def test_resuming_before_the_pause_began_is_refused():
    with pytest.raises(InvalidInput) as raised:
        resume(pause(land_dossier(), MON_23), FRI_20)
    assert raised.value.code == "resume_before_pause"


# --- paused working days and the effective due date -------------------------------


def test_a_pause_counts_the_working_days_after_it_began_through_the_resume_day():
    dossier = resume(pause(land_dossier(), MON_23), WED_25)
    assert paused_working_days(dossier, CALENDAR, FRI_27) == 2  # Tue 24, Wed 25


def test_a_pause_ended_on_the_day_it_began_counts_nothing():
    dossier = resume(pause(land_dossier(), MON_23), MON_23)
    assert paused_working_days(dossier, CALENDAR, FRI_27) == 0


def test_a_pause_over_a_weekend_counts_only_working_days():
    dossier = resume(pause(land_dossier(), FRI_20), MON_23)
    assert paused_working_days(dossier, CALENDAR, FRI_27) == 1


def test_an_open_pause_counts_up_to_today():
    dossier = pause(land_dossier(), FRI_20)
    assert paused_working_days(dossier, CALENDAR, FRI_20) == 0
    assert paused_working_days(dossier, CALENDAR, SUN_22) == 0
    assert paused_working_days(dossier, CALENDAR, WED_25) == 3


def test_several_pauses_add_up():
    dossier = land_dossier(due_date=FRI_27)
    dossier = resume(pause(dossier, FRI_20), MON_23)  # Mon 23
    dossier = resume(pause(dossier, TUE_24), THU_26)  # Wed 25, Thu 26
    assert paused_working_days(dossier, CALENDAR, MON_30) == 3


def test_a_pause_counts_only_up_to_today_when_asked_about_an_earlier_day():
    dossier = resume(pause(land_dossier(), FRI_20), THU_26)
    assert paused_working_days(dossier, CALENDAR, TUE_24) == 2
    assert paused_working_days(dossier, CALENDAR, MON_30) == 4


def test_the_effective_due_date_is_the_appointment_date_when_never_paused():
    assert effective_due_date(land_dossier(), CALENDAR, MON_30) == TUE_24


def test_a_pause_pushes_the_effective_due_date_back_by_working_days():
    dossier = resume(pause(land_dossier(), FRI_20), TUE_24)  # Mon 23, Tue 24 waited
    assert effective_due_date(dossier, CALENDAR, MON_30) == THU_26
    assert dossier.due_date == TUE_24  # the receipt's date stays for the apology slip


def test_the_effective_due_date_skips_a_holiday_when_pushed_back():
    # Due Tue 1 Sep 2026; paused Mon 31 Aug, resumed Tue 1 Sep: one day more is Thu 3 Sep.
    dossier = receive(
        "HS-2",
        "Cấp giấy phép xây dựng",
        "xay_dung",
        Channel.ONLINE,
        received_on=date(2026, 8, 25),
        due_date=date(2026, 9, 1),
    )
    dossier = resume(pause(dossier, date(2026, 8, 31)), date(2026, 9, 1))
    assert effective_due_date(dossier, CALENDAR, date(2026, 9, 10)) == date(2026, 9, 3)


# --- return_result ----------------------------------------------------------------


def test_returning_the_result_records_the_local_day():
    dossier = return_result(land_dossier(), MON_23)
    assert dossier.returned_on == MON_23
    assert dossier.is_returned


def test_returning_twice_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        return_result(return_result(land_dossier(), MON_23), TUE_24)
    assert raised.value.code == "already_returned"


def test_returning_before_receipt_is_refused():
    with pytest.raises(InvalidInput) as raised:
        return_result(land_dossier(), THU_19 - timedelta(days=1))
    assert raised.value.code == "return_before_received"


def test_returning_on_the_day_of_receipt_is_allowed():
    assert return_result(land_dossier(), THU_19).returned_on == THU_19


def test_returning_a_paused_dossier_ends_the_pause_that_day():
    dossier = return_result(pause(land_dossier(), FRI_20), TUE_24)
    assert dossier.pauses == (Pause(started_on=FRI_20, ended_on=TUE_24),)


def test_returning_before_the_last_pause_is_refused():
    with pytest.raises(InvalidInput) as raised:
        return_result(pause(land_dossier(), MON_23), FRI_20)
    assert raised.value.code == "return_before_pause"
    resumed = resume(pause(land_dossier(), FRI_20), TUE_24)
    with pytest.raises(InvalidInput):
        return_result(resumed, MON_23)


# --- classify_returned ------------------------------------------------------------


def test_returned_before_the_appointment_date_is_early():
    assert outcome_if_returned_on(land_dossier(), MON_23) is ReturnOutcome.EARLY


def test_returned_on_the_appointment_date_is_on_time():
    assert outcome_if_returned_on(land_dossier(), TUE_24) is ReturnOutcome.ON_TIME


def test_returned_after_the_appointment_date_is_late():
    assert outcome_if_returned_on(land_dossier(), WED_25) is ReturnOutcome.LATE


def test_returned_at_one_second_before_local_midnight_on_the_due_date_is_on_time():
    # 16:59:59Z is 23:59:59 on Tuesday 24 in Hà Nội (UTC+7).
    returned_on = local("2026-11-24T16:59:59Z")
    assert returned_on == TUE_24
    assert outcome_if_returned_on(land_dossier(), returned_on) is ReturnOutcome.ON_TIME


def test_returned_at_local_midnight_after_the_due_date_is_late():
    # 17:00:00Z is 00:00:00 on Wednesday 25 in Hà Nội, although still the 24th in UTC.
    returned_on = local("2026-11-24T17:00:00Z")
    assert returned_on == WED_25
    assert outcome_if_returned_on(land_dossier(), returned_on) is ReturnOutcome.LATE


def test_returned_just_after_local_midnight_on_the_due_date_is_on_time_not_early():
    # 17:30Z on Monday 23 is already 00:30 on Tuesday 24 locally: the UTC date would say early.
    returned_on = local("2026-11-23T17:30:00Z")
    assert returned_on == TUE_24
    assert outcome_if_returned_on(land_dossier(), returned_on) is ReturnOutcome.ON_TIME


def test_the_hour_of_return_does_not_matter_only_the_local_date():
    morning = local("2026-11-24T01:00:00Z")  # 08:00 local
    evening = local("2026-11-24T12:00:00Z")  # 19:00 local
    outcomes = {
        outcome_if_returned_on(land_dossier(), returned_on)
        for returned_on in (morning, evening)
    }
    assert outcomes == {ReturnOutcome.ON_TIME}


def test_a_pause_for_missing_documents_turns_a_late_return_into_an_on_time_one():
    # Due Tue 24; waited for documents Fri 20 -> Mon 23 (one working day): due Wed 25.
    dossier = resume(pause(land_dossier(), FRI_20), MON_23)
    assert outcome_if_returned_on(dossier, WED_25) is ReturnOutcome.ON_TIME
    assert outcome_if_returned_on(dossier, THU_26) is ReturnOutcome.LATE


def test_a_return_while_paused_counts_the_pause_up_to_the_return_day():
    # Paused Mon 23 and never resumed; returned Thu 26: Tue, Wed, Thu waited, due Fri 27.
    dossier = return_result(pause(land_dossier(), MON_23), THU_26)
    assert classify_returned(dossier, CALENDAR) is ReturnOutcome.EARLY


def test_a_return_across_tet_is_judged_in_working_days():
    # Received Wed 3 Feb 2027 with 3 working days: due Mon 15 Feb, after the Tết break.
    received_on = date(2027, 2, 3)
    due = due_date_for(received_on, CALENDAR, working_days=3)
    dossier = receive("HS-3", "Đăng ký kinh doanh hộ", "dkkd", Channel.ONLINE, received_on, due)
    assert outcome_if_returned_on(dossier, date(2027, 2, 12)) is ReturnOutcome.EARLY
    assert outcome_if_returned_on(dossier, date(2027, 2, 15)) is ReturnOutcome.ON_TIME
    assert outcome_if_returned_on(dossier, date(2027, 2, 16)) is ReturnOutcome.LATE


def test_classifying_a_dossier_not_yet_returned_as_returned_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        classify_returned(land_dossier(), CALENDAR)
    assert raised.value.code == "not_returned"


# --- classify_open ----------------------------------------------------------------


def test_an_open_dossier_is_within_time_up_to_and_on_its_due_date():
    dossier = land_dossier()
    assert classify_open(dossier, CALENDAR, THU_19) is OpenStatus.WITHIN_TIME
    assert classify_open(dossier, CALENDAR, TUE_24) is OpenStatus.WITHIN_TIME


def test_an_open_dossier_is_overdue_the_day_after_its_due_date():
    assert classify_open(land_dossier(), CALENDAR, WED_25) is OpenStatus.OVERDUE


def test_an_open_dossier_due_on_friday_is_overdue_over_the_weekend():
    dossier = land_dossier(due_date=FRI_20)
    assert classify_open(dossier, CALENDAR, SAT_21) is OpenStatus.OVERDUE
    assert days_late(dossier, CALENDAR, SAT_21) == 0  # no working day missed yet
    assert days_late(dossier, CALENDAR, MON_23) == 1


def test_a_dossier_paused_on_its_friday_due_date_stays_within_time_over_the_weekend():
    dossier = pause(land_dossier(due_date=FRI_20), FRI_20)
    for today in (FRI_20, SAT_21, SUN_22, MON_23, FRI_27, MON_30):
        assert classify_open(dossier, CALENDAR, today) is OpenStatus.WITHIN_TIME, today


def test_a_dossier_paused_before_its_due_date_stays_within_time_however_long_the_wait():
    dossier = pause(land_dossier(), FRI_20)
    assert classify_open(dossier, CALENDAR, date(2027, 3, 1)) is OpenStatus.WITHIN_TIME
    assert days_late(dossier, CALENDAR, date(2027, 3, 1)) == 0


def test_a_dossier_paused_after_its_due_date_stays_overdue():
    dossier = pause(land_dossier(), THU_26)
    for today in (THU_26, FRI_27, MON_30):
        assert classify_open(dossier, CALENDAR, today) is OpenStatus.OVERDUE, today
    # The lateness is frozen while paused: two working days (Wed 25, Thu 26).
    assert days_late(dossier, CALENDAR, MON_30) == 2


def test_after_resuming_the_dossier_has_as_many_working_days_left_as_when_paused():
    # Paused Mon 23 with one working day left (Tue 24); resumed Thu 26: due Fri 27.
    dossier = resume(pause(land_dossier(), MON_23), THU_26)
    assert classify_open(dossier, CALENDAR, FRI_27) is OpenStatus.WITHIN_TIME
    assert classify_open(dossier, CALENDAR, MON_30) is OpenStatus.OVERDUE


def test_classifying_a_returned_dossier_as_open_is_a_conflict():
    with pytest.raises(Conflict) as raised:
        classify_open(return_result(land_dossier(), MON_23), CALENDAR, TUE_24)
    assert raised.value.code == "already_returned"


def test_a_dossier_returned_after_the_report_day_was_still_open_on_it():
    # Biểu 06 for a period ending Wed 25 counts this dossier, returned Fri 27, as overdue.
    dossier = return_result(land_dossier(), FRI_27)
    assert classify_open(dossier, CALENDAR, WED_25) is OpenStatus.OVERDUE
    assert classify_open(dossier, CALENDAR, MON_23) is OpenStatus.WITHIN_TIME


def test_a_pause_that_ended_after_the_report_day_was_still_running_on_it():
    dossier = resume(pause(land_dossier(due_date=FRI_20), FRI_20), MON_30)
    assert classify_open(dossier, CALENDAR, SAT_21) is OpenStatus.WITHIN_TIME


# --- days_late --------------------------------------------------------------------


def test_days_late_is_zero_for_an_early_or_on_time_return():
    assert days_late(return_result(land_dossier(), MON_23), CALENDAR) == 0
    assert days_late(return_result(land_dossier(), TUE_24), CALENDAR) == 0


def test_days_late_counts_working_days_past_the_due_date_at_return():
    # Due Fri 20, returned Tue 24: Mon 23 and Tue 24 are late, the weekend is not.
    dossier = return_result(land_dossier(due_date=FRI_20), TUE_24)
    assert days_late(dossier, CALENDAR) == 2
    assert days_late(dossier, CALENDAR, MON_30) == 2  # fixed once returned


def test_days_late_skips_holidays():
    # Due Tue 1 Sep 2026, returned Thu 3 Sep: Wed 2 Sep is National Day.
    dossier = receive(
        "HS-4", "Chứng thực", "chung_thuc", Channel.IN_PERSON, date(2026, 8, 31), date(2026, 9, 1)
    )
    assert days_late(return_result(dossier, date(2026, 9, 3)), CALENDAR) == 1


def test_days_late_of_an_open_dossier_grows_with_today():
    dossier = land_dossier()
    assert days_late(dossier, CALENDAR, TUE_24) == 0
    assert days_late(dossier, CALENDAR, WED_25) == 1
    assert days_late(dossier, CALENDAR, MON_30) == 4


def test_days_late_takes_pauses_into_account():
    # Due Tue 24, paused Fri 20 -> Mon 23 (one day): due Wed 25, returned Fri 27.
    dossier = return_result(resume(pause(land_dossier(), FRI_20), MON_23), FRI_27)
    assert days_late(dossier, CALENDAR) == 2


def test_days_late_of_an_open_dossier_needs_today():
    with pytest.raises(ValueError, match="today is required"):
        days_late(land_dossier(), CALENDAR)


def test_days_late_of_a_dossier_returned_after_today_is_counted_as_of_today():
    dossier = return_result(land_dossier(), MON_30)
    assert days_late(dossier, CALENDAR, WED_25) == 1
    assert days_late(dossier, CALENDAR) == 4
