"""Tests for working-day arithmetic: weekends, Vietnamese public holidays, long spans."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.domain.workdays import WorkCalendar

NATIONAL_DAY_2026 = date(2026, 9, 2)  # Wednesday
# Tết Nguyên đán 2027: Friday 5 to Thursday 11 February.
TET_2027 = frozenset(date(2027, 2, 5) + timedelta(days=offset) for offset in range(7))
REUNIFICATION_AND_LABOUR_DAY_2026 = frozenset({date(2026, 4, 30), date(2026, 5, 1)})  # Thu, Fri

VIETNAM_CALENDAR = WorkCalendar(
    holidays=frozenset({NATIONAL_DAY_2026}) | TET_2027 | REUNIFICATION_AND_LABOUR_DAY_2026
)

FRIDAY = date(2026, 11, 20)
SATURDAY = date(2026, 11, 21)
SUNDAY = date(2026, 11, 22)
MONDAY = date(2026, 11, 23)

# Hypothesis explores these; no example database is written so runs stay reproducible
# and the working tree stays clean.
property_settings = settings(database=None, deadline=None, max_examples=200)

some_days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
some_calendars = st.builds(
    WorkCalendar,
    holidays=st.frozensets(
        st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)), max_size=60
    ),
    working_weekdays=st.frozensets(st.integers(min_value=0, max_value=6), min_size=1),
)


def count_working_days_one_by_one(calendar: WorkCalendar, after: date, through: date) -> int:
    """The obvious, slow definition the fast version must agree with."""
    count = 0
    day = after + timedelta(days=1)
    while day <= through:
        count += calendar.is_working_day(day)
        day += timedelta(days=1)
    return count


def add_working_days_one_by_one(calendar: WorkCalendar, start: date, days: int) -> date:
    day = start
    while days > 0:
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            days -= 1
    return day


def test_weekdays_are_working_days_and_weekends_are_not():
    calendar = WorkCalendar()
    assert calendar.is_working_day(MONDAY)
    assert calendar.is_working_day(FRIDAY)
    assert not calendar.is_working_day(SATURDAY)
    assert not calendar.is_working_day(SUNDAY)


def test_a_listed_holiday_is_not_a_working_day():
    assert not VIETNAM_CALENDAR.is_working_day(NATIONAL_DAY_2026)
    assert VIETNAM_CALENDAR.is_working_day(NATIONAL_DAY_2026 + timedelta(days=1))


def test_three_working_days_after_a_friday_is_the_next_wednesday():
    assert WorkCalendar().add_working_days(FRIDAY, 3) == date(2026, 11, 25)


def test_adding_working_days_skips_a_weekend_and_national_day():
    # Fri 28 Aug -> Mon 31 (1), Tue 1 Sep (2), Wed 2 Sep is National Day, Thu 3 Sep (3).
    assert VIETNAM_CALENDAR.add_working_days(date(2026, 8, 28), 3) == date(2026, 9, 3)


def test_adding_working_days_skips_the_whole_tet_break():
    # Mon 1 Feb: Tue 2 (1), Wed 3 (2), Thu 4 (3), Tết Fri 5 .. Thu 11, Fri 12 (4), Mon 15 (5).
    assert VIETNAM_CALENDAR.add_working_days(date(2027, 2, 1), 5) == date(2027, 2, 15)


def test_one_working_day_after_the_eve_of_tet_is_the_first_day_back():
    assert VIETNAM_CALENDAR.add_working_days(date(2027, 2, 4), 1) == date(2027, 2, 12)


def test_adding_working_days_never_counts_the_start_day():
    assert WorkCalendar().add_working_days(MONDAY, 1) == MONDAY + timedelta(days=1)
    assert WorkCalendar().add_working_days(SATURDAY, 1) == MONDAY


def test_adding_zero_working_days_to_a_working_day_gives_that_day():
    assert WorkCalendar().add_working_days(MONDAY, 0) == MONDAY


def test_adding_zero_working_days_to_a_weekend_or_holiday_gives_the_next_working_day():
    assert WorkCalendar().add_working_days(SATURDAY, 0) == MONDAY
    assert VIETNAM_CALENDAR.add_working_days(date(2027, 2, 5), 0) == date(2027, 2, 12)


def test_adding_negative_working_days_is_refused():
    with pytest.raises(ValueError, match="days must be >= 0"):
        WorkCalendar().add_working_days(MONDAY, -1)


def test_next_working_day_of_a_working_day_is_itself():
    assert WorkCalendar().next_working_day(FRIDAY) == FRIDAY


def test_next_working_day_jumps_over_a_long_weekend_of_holidays():
    # Thu 30 Apr and Fri 1 May 2026 are holidays, then a weekend.
    assert VIETNAM_CALENDAR.next_working_day(date(2026, 4, 30)) == date(2026, 5, 4)


def test_working_days_between_excludes_the_first_day_and_includes_the_last():
    calendar = WorkCalendar()
    assert calendar.working_days_between(FRIDAY, MONDAY) == 1
    assert calendar.working_days_between(MONDAY, MONDAY + timedelta(days=2)) == 2
    assert calendar.working_days_between(FRIDAY, SUNDAY) == 0


def test_working_days_between_is_zero_when_the_span_is_empty_or_reversed():
    calendar = WorkCalendar()
    assert calendar.working_days_between(MONDAY, MONDAY) == 0
    assert calendar.working_days_between(MONDAY, FRIDAY) == 0


def test_working_days_between_leaves_out_holidays():
    # Mon 31 Aug .. Fri 4 Sep 2026 has five weekdays, one of them National Day.
    assert VIETNAM_CALENDAR.working_days_between(date(2026, 8, 30), date(2026, 9, 4)) == 4


def test_a_holiday_on_a_weekend_is_not_subtracted_twice():
    sunday_holiday = WorkCalendar(holidays=frozenset({SUNDAY}))
    assert sunday_holiday.working_days_between(FRIDAY, MONDAY) == 1
    assert sunday_holiday.add_working_days(FRIDAY, 1) == MONDAY


def test_a_centre_open_on_saturdays_counts_them():
    monday_to_saturday = WorkCalendar(working_weekdays=frozenset(range(6)))
    assert monday_to_saturday.is_working_day(SATURDAY)
    assert monday_to_saturday.add_working_days(FRIDAY, 1) == SATURDAY
    assert monday_to_saturday.working_days_between(FRIDAY, MONDAY) == 2


def test_working_days_over_ten_years_match_counting_day_by_day():
    start, end = date(2026, 1, 1), date(2036, 1, 1)
    expected = count_working_days_one_by_one(VIETNAM_CALENDAR, start, end)
    assert VIETNAM_CALENDAR.working_days_between(start, end) == expected
    assert VIETNAM_CALENDAR.add_working_days(start, expected) == add_working_days_one_by_one(
        VIETNAM_CALENDAR, start, expected
    )


def test_an_empty_set_of_working_weekdays_is_refused():
    with pytest.raises(ValueError, match="must not be empty"):
        WorkCalendar(working_weekdays=frozenset())


def test_a_weekday_number_outside_monday_to_sunday_is_refused():
    with pytest.raises(ValueError, match="0..6"):
        WorkCalendar(working_weekdays=frozenset({0, 7}))


def test_a_datetime_in_the_holiday_list_is_refused():
    with pytest.raises(ValueError, match="holidays must be dates"):
        WorkCalendar(holidays=frozenset({datetime(2026, 9, 2)}))


def test_a_calendar_built_from_a_list_is_frozen_hashable_and_equal_to_one_built_from_a_set():
    from_list = WorkCalendar(
        holidays=[NATIONAL_DAY_2026], working_weekdays=[0, 1, 2, 3, 4]  # type: ignore[arg-type]
    )
    from_set = WorkCalendar(holidays=frozenset({NATIONAL_DAY_2026}))
    assert from_list == from_set
    assert hash(from_list) == hash(from_set)
    assert isinstance(from_list.holidays, frozenset)


@property_settings
@given(calendar=some_calendars, start=some_days, days=st.integers(min_value=1, max_value=1500))
def test_adding_working_days_lands_on_a_working_day_exactly_that_many_working_days_later(
    calendar, start, days
):
    due = calendar.add_working_days(start, days)
    assert due > start
    assert calendar.is_working_day(due)
    assert calendar.working_days_between(start, due) == days


@property_settings
@given(calendar=some_calendars, start=some_days, days=st.integers(min_value=0, max_value=400))
def test_adding_working_days_agrees_with_stepping_one_day_at_a_time(calendar, start, days):
    expected = (
        calendar.next_working_day(start)
        if days == 0
        else add_working_days_one_by_one(calendar, start, days)
    )
    assert calendar.add_working_days(start, days) == expected


@property_settings
@given(calendar=some_calendars, after=some_days, span=st.integers(min_value=-30, max_value=800))
def test_working_days_between_agrees_with_counting_one_day_at_a_time(calendar, after, span):
    through = after + timedelta(days=span)
    assert calendar.working_days_between(after, through) == count_working_days_one_by_one(
        calendar, after, through
    )
