"""Working-day arithmetic for dossier deadlines: weekends and configured holidays do not count."""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

DAYS_PER_WEEK = 7
MONDAY_TO_FRIDAY = frozenset({0, 1, 2, 3, 4})

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkCalendar:
    """Which local dates a centre works on.

    `working_weekdays` uses `date.weekday()` numbering (Monday = 0). A holiday that
    falls on a non-working weekday changes nothing; the centre was closed anyway.
    Make-up working Saturdays (*làm bù*) are not modelled: list the swapped weekday as
    a holiday and leave the Saturday out, which gives the same deadlines.
    """

    holidays: frozenset[date] = frozenset()
    working_weekdays: frozenset[int] = MONDAY_TO_FRIDAY
    # Holidays that fall on working weekdays, sorted, so that counting the ones inside
    # a span is two binary searches instead of a walk over every day of the span.
    _closed_working_weekdays: tuple[date, ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        # Accept any iterable from config loaders but store frozensets, so the
        # calendar stays hashable and nobody can mutate it behind our back.
        holidays = frozenset(self.holidays)
        working_weekdays = frozenset(self.working_weekdays)
        if not working_weekdays:
            # With no working weekday every "next working day" search would run forever.
            raise ValueError("working_weekdays must not be empty")
        if not working_weekdays <= set(range(DAYS_PER_WEEK)):
            raise ValueError(
                f"working_weekdays must be within 0..6, got {sorted(working_weekdays)}"
            )
        for holiday in holidays:
            if not _is_plain_date(holiday):
                raise ValueError(f"holidays must be dates, got {holiday!r}")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "working_weekdays", working_weekdays)
        object.__setattr__(
            self,
            "_closed_working_weekdays",
            tuple(sorted(day for day in holidays if day.weekday() in working_weekdays)),
        )

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_weekdays and day not in self.holidays

    def next_working_day(self, day: date) -> date:
        """The first working day on or after `day`."""
        # Terminates: at most the holidays plus one week can be skipped.
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def working_days_between(self, after: date, through: date) -> int:
        """How many working days `d` satisfy `after < d <= through` (0 when `through <= after`)."""
        if through <= after:
            return 0
        span_days = (through - after).days
        full_weeks, extra_days = divmod(span_days, DAYS_PER_WEEK)
        first_weekday = after.weekday()
        extra_working = sum(
            1
            for offset in range(1, extra_days + 1)
            if (first_weekday + offset) % DAYS_PER_WEEK in self.working_weekdays
        )
        weekday_count = full_weeks * len(self.working_weekdays) + extra_working
        closed = self._closed_working_weekdays
        holidays_inside = bisect.bisect_right(closed, through) - bisect.bisect_right(closed, after)
        return weekday_count - holidays_inside

    def add_working_days(self, start: date, days: int) -> date:
        """The `days`-th working day after `start`; `start` itself never counts.

        `days == 0` gives `start` when it is a working day, else the next one, so that
        "due the same day" received on a Saturday means the following Monday.
        """
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        if days == 0:
            return self.next_working_day(start)
        per_week = len(self.working_weekdays)
        cursor = start
        remaining = days
        # Jump whole weeks while more than a week's worth remains: a week holds at most
        # `per_week` working days, so the jump never overshoots and `remaining` stays >= 1.
        while remaining > per_week:
            weeks = (remaining - 1) // per_week
            landing = cursor + timedelta(weeks=weeks)
            remaining -= self.working_days_between(cursor, landing)
            cursor = landing
        while remaining > 0:
            cursor += _ONE_DAY
            if self.is_working_day(cursor):
                remaining -= 1
        return cursor


def _is_plain_date(value: object) -> bool:
    # datetime is a subclass of date but never equals one, so a datetime in the
    # holiday set would silently fail to close the centre.
    return isinstance(value, date) and not isinstance(value, datetime)
