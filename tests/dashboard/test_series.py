"""The dashboard's chart series (queue_server.domain.series) on hand-made records: no database, no app."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from queue_server.domain.figures import period_figures, rating_figures
from queue_server.domain.ratings import MisuseFlag, Rating
from queue_server.domain.series import (
    arrivals_by_hour,
    average_wait_by_hour,
    clerk_comparison,
    dashboard_series,
    hours_axis,
    opening_hour_span,
    satisfaction_by_day,
)
from queue_server.domain.tickets import Ticket, TicketStatus
from tests.conftest import make_config

HANOI = timezone(timedelta(hours=7))
MONDAY = date(2026, 11, 23)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local (UTC+7) instant, handed over in UTC as the store does."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HANOI).astimezone(timezone.utc)


def ticket(number: int, issued: datetime, *, wait_min: float | None = None, service_min: float | None = None,
           field: str = "dat-dai", clerk: str | None = None, counter: str | None = None, day: date = MONDAY) -> Ticket:
    called = issued + timedelta(minutes=wait_min) if wait_min is not None else None
    finished = called + timedelta(minutes=service_min) if called is not None and service_min is not None else None
    status = TicketStatus.FINISHED if finished else TicketStatus.CALLED if called else TicketStatus.WAITING
    return Ticket(
        id=f"t{number}", service_day=day, issued_field_id=field, field_id=field, letter="A", number=number,
        status=status, issued_at=issued, queued_at=issued, called_at=called, last_called_at=called, started_at=called,
        finished_at=finished, counter_id=counter, clerk_id=clerk,
    )


def rating(level: str, day: date, *, counted: bool = True, clerk: str | None = None) -> Rating:
    return Rating(counter_id="quay-1", level=level, received_at=at(day, 10), day=day, counted=counted,
                  flag=None if counted else MisuseFlag.AFTER_WINDOW, clerk_id=clerk)


def test_the_opening_span_covers_every_field_and_ends_in_the_hour_before_closing() -> None:
    assert opening_hour_span(make_config()) == (7, 16)  # 07:30–11:30 and 13:30–17:00
    late_field = {"id": "dat-dai", "letter": "A", "name": {"vi": "Đất đai", "en": "Land"},
                  "opening_hours": [{"days": ["sat"], "open": "06:45", "close": "17:30"}]}
    config = make_config(fields=[late_field, {"id": "ho-tich", "letter": "B", "name": {"vi": "Hộ tịch", "en": "Civil status"}}],
                         counters=[{"id": "quay-1", "number": 1, "fields": ["dat-dai", "ho-tich"]}], clerks=[])
    assert opening_hour_span(config) == (6, 17)


def test_the_hours_axis_widens_to_tickets_issued_outside_the_opening_hours() -> None:
    config = make_config()
    assert hours_axis(config, []) == list(range(7, 17))
    early_and_late = [ticket(1, at(MONDAY, 6, 55)), ticket(2, at(MONDAY, 18, 5))]
    assert hours_axis(config, early_and_late) == list(range(6, 19))


def test_arrivals_are_counted_by_local_hour_over_every_day() -> None:
    tz = make_config().tz
    tickets = [
        ticket(1, at(MONDAY, 7, 59)), ticket(2, at(MONDAY, 8, 0)), ticket(3, at(MONDAY, 8, 59)),
        ticket(4, at(MONDAY + timedelta(days=1), 8, 30), day=MONDAY + timedelta(days=1)),
    ]
    assert tickets[1].issued_at.hour == 1, "stored in UTC: 08:00 in Hà Nội is 01:00 UTC"
    assert arrivals_by_hour(tickets, tz, [7, 8, 9]) == [1, 3, 0]


def test_the_wait_by_hour_is_the_mean_of_the_called_tickets_issued_in_that_hour() -> None:
    tz = make_config().tz
    tickets = [
        ticket(1, at(MONDAY, 8, 10), wait_min=4),
        ticket(2, at(MONDAY, 8, 50), wait_min=20, service_min=5),  # called at 09:10: still counts for 8h
        ticket(3, at(MONDAY, 8, 55)),  # not called: no wait yet
        ticket(4, at(MONDAY, 9, 5), wait_min=1.5),
    ]
    assert average_wait_by_hour(tickets, tz, [7, 8, 9]) == [None, 12 * 60.0, 90.0]


def test_satisfaction_by_day_lists_every_day_and_counts_only_counted_ratings() -> None:
    config = make_config()
    tuesday, thursday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=3)
    ratings = [
        rating("very_satisfied", MONDAY), rating("unsatisfied", MONDAY), rating("satisfied", MONDAY),
        rating("unsatisfied", MONDAY, counted=False),
        rating("unsatisfied", thursday),
    ]
    series = satisfaction_by_day(config, ratings, MONDAY, thursday)
    assert [(row["day"], row["counted"], row["satisfied"], row["satisfaction_pct"]) for row in series] == [
        ("2026-11-23", 3, 2, 66.7), ("2026-11-24", 0, 0, None), ("2026-11-25", 0, 0, None), ("2026-11-26", 1, 0, 0.0),
    ]
    # The same rule as the tables: a day's point equals that day's satisfaction %.
    assert series[0]["satisfaction_pct"] == rating_figures(config, [r for r in ratings if r.day == MONDAY])["satisfaction_pct"]
    assert satisfaction_by_day(config, ratings, tuesday, tuesday) == [{"day": "2026-11-24", "counted": 0, "satisfied": 0, "satisfaction_pct": None}]


def test_clerks_side_by_side_leave_out_the_idle_and_name_the_unknown() -> None:
    config = make_config()  # knows Nguyễn Văn An and Trần Thị Bình
    tickets = [
        ticket(1, at(MONDAY, 8), wait_min=10, service_min=5, clerk="tran-thi-binh", counter="quay-2"),
        ticket(2, at(MONDAY, 8), wait_min=20, service_min=15, clerk="tran-thi-binh", counter="quay-2"),
        ticket(3, at(MONDAY, 8), wait_min=2, service_min=4, clerk="le-van-cuong", counter="quay-3"),
    ]
    ratings = [rating("very_satisfied", MONDAY, clerk="tran-thi-binh"), rating("unsatisfied", MONDAY, clerk="tran-thi-binh")]
    figures = period_figures(config, MONDAY, MONDAY, tickets, ratings, [])
    rows = clerk_comparison(config, figures["by_clerk"])
    assert [row["clerk"] for row in rows] == ["tran-thi-binh", "le-van-cuong"]  # by name; An did nothing
    assert rows[0] == {"clerk": "tran-thi-binh", "name": "Trần Thị Bình", "served": 2, "no_show": 0, "avg_wait_s": 900.0,
                       "avg_service_s": 600.0, "ratings": 2, "satisfaction_pct": 50.0, "index": 50.0}
    assert rows[1]["name"] == "le-van-cuong" and rows[1]["ratings"] == 0 and rows[1]["satisfaction_pct"] is None


def test_a_clerk_rated_but_with_no_ticket_in_the_period_is_still_shown() -> None:
    config = make_config()
    figures = period_figures(config, MONDAY, MONDAY, [], [rating("satisfied", MONDAY, clerk="nguyen-van-an")], [])
    assert [(row["clerk"], row["served"], row["satisfaction_pct"]) for row in clerk_comparison(config, figures["by_clerk"])] == [
        ("nguyen-van-an", 0, 100.0),
    ]


def test_the_series_leave_out_records_outside_the_period_as_the_figures_do() -> None:
    config = make_config()
    sunday = MONDAY - timedelta(days=1)
    tickets = [ticket(1, at(MONDAY, 9), wait_min=5, clerk="nguyen-van-an"), ticket(2, at(sunday, 9), wait_min=50, day=sunday)]
    ratings = [rating("satisfied", MONDAY), rating("unsatisfied", sunday)]
    figures = period_figures(config, MONDAY, MONDAY, tickets, ratings, [])
    series = dashboard_series(config, MONDAY, MONDAY, tickets, ratings, figures)
    assert sum(series["arrivals_by_hour"]) == figures["tickets"]["issued"] == 1
    assert dict(zip(series["hours"], series["avg_wait_by_hour_s"]))[9] == figures["tickets"]["avg_wait_s"] == 300.0
    assert [row["satisfaction_pct"] for row in series["satisfaction_by_day"]] == [figures["ratings"]["satisfaction_pct"]] == [100.0]
    assert [row["clerk"] for row in series["clerks"]] == ["nguyen-van-an"]
