"""Figures from lean records (what a year's export reads) equal the figures from Ticket and Rating objects,
day by day and for the period; the queue rules are the same functions on both paths; a dossier's open
status over a run of days is classify_open's on each day. Hand-made records: no database."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.domain import tickets as ticket_rules
from queue_server.domain.dossiers import (
    Channel,
    Dossier,
    OpenStatus,
    Pause,
    classify_open,
    open_status_runs,
)
from queue_server.domain.errors import Conflict
from queue_server.domain.figures import (
    period_and_days,
    period_figures,
    rating_figures,
    rating_record,
    ticket_figures,
    ticket_record,
)
from queue_server.domain.ratings import MisuseFlag, Rating
from queue_server.domain.tickets import Ticket, TicketStatus
from queue_server.domain.workdays import WorkCalendar
from tests.conftest import make_config

HANOI = timezone(timedelta(hours=7))
FIRST, LAST = date(2026, 11, 23), date(2026, 11, 27)  # Monday to Friday
CALENDAR = WorkCalendar(holidays=frozenset({date(2026, 11, 25)}))  # a Wednesday off


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=HANOI).astimezone(timezone.utc)


def ticket(number: int, day: date, status: TicketStatus, *, wait_s: int | None = None, service_s: int | None = None,
           field: str = "dat-dai", issued_field: str | None = None, counter: str | None = "quay-1",
           clerk: str | None = "nguyen-van-an", priority: str | None = None) -> Ticket:
    issued = at(day, 8) + timedelta(minutes=number)
    called = issued + timedelta(seconds=wait_s) if wait_s is not None else None
    started = called if service_s is not None else None
    finished = started + timedelta(seconds=service_s) if started is not None else None
    return Ticket(
        id=f"{day:%m%d}-{number}", service_day=day, issued_field_id=issued_field or field, field_id=field, letter="A",
        number=number, status=status, issued_at=issued, queued_at=issued, priority=priority, called_at=called,
        last_called_at=called, started_at=started, finished_at=finished,
        counter_id=counter if called else None, clerk_id=clerk if called else None,
    )


def rating(day: date, level: str, *, counted: bool = True, flag: MisuseFlag | None = None, counter: str = "quay-1",
           clerk: str | None = "nguyen-van-an", field: str | None = "dat-dai", ticket_id: str | None = None,
           dossier_code: str | None = None) -> Rating:
    return Rating(counter_id=counter, level=level, received_at=at(day, 9), day=day, counted=counted, flag=flag,
                  ticket_id=ticket_id, clerk_id=clerk, field_id=field, dossier_code=dossier_code)


def dossier(code: str, received_on: date, due_date: date, returned_on: date | None = None, *, field: str = "dat-dai",
            channel: Channel = Channel.IN_PERSON, pauses: tuple[Pause, ...] = (), ticket_id: str | None = None) -> Dossier:
    return Dossier(code=code, procedure="Thủ tục", field_id=field, channel=channel, received_on=received_on,
                   due_date=due_date, returned_on=returned_on, pauses=pauses, ticket_id=ticket_id)


def a_week() -> tuple[list[Ticket], list[Rating], list[Dossier]]:
    """Five days of a small centre, with every case the figures tell apart."""
    tickets, ratings = [], []
    for offset in range(5):
        day = FIRST + timedelta(days=offset)
        tickets += [
            ticket(1, day, TicketStatus.FINISHED, wait_s=300 + offset, service_s=420),
            ticket(2, day, TicketStatus.FINISHED, wait_s=1200, service_s=60, field="ho-tich", counter="quay-2",
                   clerk="tran-thi-binh", priority="elderly"),
            ticket(3, day, TicketStatus.NO_SHOW, wait_s=900, counter="quay-2", clerk="tran-thi-binh"),
            ticket(4, day, TicketStatus.CALLED, wait_s=60, counter="quay-3", clerk="ai-do-tam-thoi"),  # not in config
            ticket(5, day, TicketStatus.WAITING),
            # Transferred: counts where it was issued, waits where it is now.
            ticket(6, day, TicketStatus.FINISHED, wait_s=599, service_s=30, field="kinh-doanh", issued_field="ho-tich",
                   counter="quay-3", clerk=None),
        ]
        ratings += [
            rating(day, "very_satisfied", ticket_id=f"{day:%m%d}-1"),
            rating(day, "unsatisfied", ticket_id=f"{day:%m%d}-2", counter="quay-2", clerk="tran-thi-binh",
                   field="ho-tich", dossier_code="HS-3" if offset == 2 else None),
            rating(day, "satisfied", counted=False, flag=MisuseFlag.ALREADY_RATED, ticket_id=f"{day:%m%d}-1"),
            rating(day, "unsatisfied", counted=False, flag=MisuseFlag.NOTHING_TO_RATE, clerk=None, field=None),
        ]
    ratings.append(rating(FIRST, "satisfied", counted=False, flag=None))  # not counted, no flag
    dossiers = [
        dossier("HS-1", date(2026, 11, 16), date(2026, 11, 20)),  # received before, still open: carried over, overdue
        dossier("HS-2", date(2026, 11, 16), date(2026, 11, 30), date(2026, 11, 24), channel=Channel.ONLINE),  # early
        dossier("HS-3", FIRST, date(2026, 11, 24), date(2026, 11, 26), ticket_id=f"{FIRST:%m%d}-2"),  # late
        dossier("HS-4", FIRST, FIRST, FIRST, field="ho-tich"),  # on time, the same day
        dossier("HS-5", date(2026, 11, 24), date(2026, 11, 26), field="ho-tich", channel=Channel.ONLINE,
                pauses=(Pause(date(2026, 11, 26), date(2026, 11, 27)),)),  # paused on its due date
        dossier("HS-6", date(2026, 11, 26), date(2026, 12, 1), pauses=(Pause(date(2026, 11, 27)),)),  # paused, open
        dossier("HS-7", date(2026, 11, 10), date(2026, 11, 13), date(2026, 11, 20)),  # returned before the period
        dossier("HS-8", date(2026, 11, 28), date(2026, 12, 2)),  # received after it
    ]
    return tickets, ratings, dossiers


def test_the_queue_rules_are_one_function_for_tickets_and_plain_instants() -> None:
    waiting = ticket(1, FIRST, TicketStatus.WAITING)
    on_target = ticket_rules.call(waiting, "quay-1", None, waiting.issued_at + timedelta(minutes=15))
    assert on_target.wait_s() == ticket_rules.wait_seconds(on_target.issued_at, on_target.called_at) == 900.0
    assert ticket_rules.served_within_target(on_target, 15) is True
    assert ticket_rules.called_within_target(on_target.issued_at, on_target.called_at, timedelta(minutes=15)) is True
    late = ticket_rules.call(waiting, "quay-1", None, waiting.issued_at + timedelta(minutes=15, microseconds=1))
    assert ticket_rules.served_within_target(late, 15) is False
    assert ticket_rules.called_within_target(late.issued_at, late.called_at, timedelta(minutes=15)) is False
    assert waiting.wait_s() is None and ticket_rules.served_within_target(waiting, 15) is None
    assert ticket_rules.called_within_target(waiting.issued_at, None, timedelta(minutes=15)) is None
    done = ticket(4, FIRST, TicketStatus.FINISHED, wait_s=10, service_s=75)
    assert done.service_s() == ticket_rules.service_seconds(done.started_at, done.finished_at) == 75.0
    # A clock step back never makes a negative service time.
    assert ticket_rules.service_seconds(done.finished_at, done.started_at) == 0.0
    assert ticket_rules.service_seconds(None, done.finished_at) is None


def test_each_day_and_the_period_from_records_equal_period_figures_from_objects() -> None:
    config = make_config()
    tickets, ratings, dossiers = a_week()
    period, days = period_and_days(config, FIRST, LAST, [ticket_record(x) for x in tickets],
                                   [rating_record(r) for r in ratings], dossiers)
    assert period == period_figures(config, FIRST, LAST, tickets, ratings, dossiers)
    assert [day["day"] for day in days] == [(FIRST + timedelta(days=n)).isoformat() for n in range(5)]
    for day_figures in days:
        day = date.fromisoformat(day_figures["day"])
        assert {k: v for k, v in day_figures.items() if k != "day"} == period_figures(config, day, day, tickets, ratings, dossiers)
    # The week has what the figures are about (so that equality above means something).
    assert period["tickets"] | {"avg_wait_s": None, "p90_wait_s": None} == {
        "issued": 30, "priority": 5, "waiting": 5, "at_counter": 5, "served": 15, "no_show": 5, "called": 25,
        "within_target": 20, "within_target_pct": 80.0, "avg_wait_s": None, "p90_wait_s": None, "avg_service_s": 170.0,
    }
    assert period["by_field"]["ho-tich"]["tickets"]["issued"] == 10 and period["by_field"]["kinh-doanh"]["tickets"]["issued"] == 0
    assert "ai-do-tam-thoi" in period["by_clerk"] and period["ratings"]["flagged_by_reason"] == {"already_rated": 5, "nothing_to_rate": 5}
    assert period["dossiers"]["received"] == {"total": 6, "new": 4, "online": 1, "in_person": 3, "carried_over": 2}
    assert period["dossiers"]["resolved"] == {"total": 3, "early": 1, "on_time": 1, "late": 1}
    assert period["grading_766"]["unsatisfied_pct"] == 33.3  # HS-3, rated unsatisfied through its ticket
    wednesday = days[2]  # HS-1 and HS-3 past their dates, HS-5 due on Thursday
    assert wednesday["dossiers"]["open"] == {"total": 3, "within_time": 1, "overdue": 2}
    assert wednesday["dossiers"]["received"] == {"total": 3, "new": 0, "online": 0, "in_person": 0, "carried_over": 3}


def test_records_in_any_order_give_the_same_figures() -> None:
    """The Store reads records in day order; a replay may not. Counts never depend on it, and with
    waits in whole seconds neither do the sums."""
    config = make_config()
    tickets, ratings, dossiers = a_week()
    shuffled_tickets, shuffled_ratings, shuffled_dossiers = tickets[:], ratings[:], dossiers[:]
    for records in (shuffled_tickets, shuffled_ratings, shuffled_dossiers):
        random.Random(7).shuffle(records)
    in_order = period_and_days(config, FIRST, LAST, map(ticket_record, tickets), map(rating_record, ratings), dossiers)
    assert period_and_days(config, FIRST, LAST, map(ticket_record, shuffled_tickets), map(rating_record, shuffled_ratings),
                           shuffled_dossiers) == in_order


def test_one_day_and_the_period_alone() -> None:
    config = make_config()
    tickets, ratings, dossiers = a_week()
    period, days = period_and_days(config, FIRST, FIRST, map(ticket_record, tickets), map(rating_record, ratings), dossiers)
    assert days == [period | {"day": FIRST.isoformat()}]
    assert period == period_figures(config, FIRST, FIRST, tickets, ratings, dossiers)
    period, days = period_and_days(config, FIRST, LAST, map(ticket_record, tickets), map(rating_record, ratings), dossiers,
                                   with_days=False)
    assert days == [] and period == period_figures(config, FIRST, LAST, tickets, ratings, dossiers)


def test_an_empty_period() -> None:
    config = make_config()
    period, days = period_and_days(config, FIRST, LAST, [], [], [])
    assert period == period_figures(config, FIRST, LAST, [], [], []) and len(days) == 5
    assert period["tickets"]["issued"] == 0 and period["tickets"]["p90_wait_s"] is None
    assert period["grading_766"]["score_pct"] is None and period["dossiers"]["on_time_pct"] is None


def test_ticket_and_rating_figures_alone() -> None:
    config = make_config()
    tickets, ratings, _ = a_week()
    monday = [x for x in tickets if x.service_day == FIRST]
    assert ticket_figures(config, monday) == period_figures(config, FIRST, FIRST, monday, [], [])["tickets"]
    assert rating_figures(config, ratings) == period_figures(config, FIRST, LAST, [], ratings, [])["ratings"]


# --- a dossier's open status over a run of days ------------------------------------------------------

DAYS = [date(2026, 11, 2) + timedelta(days=n) for n in range(50)]


@st.composite
def open_dossiers(draw) -> tuple[Dossier, date, date]:
    """An open dossier with up to three pauses (the last possibly still running), and a run of days
    from its receipt on; due dates before, on and after weekends and the holiday."""
    received = draw(st.sampled_from(DAYS[:20]))
    due = received + timedelta(days=draw(st.integers(0, 15)))
    pauses, cursor = [], received
    for _ in range(draw(st.integers(0, 3))):
        start = cursor + timedelta(days=draw(st.integers(0, 6)))
        if draw(st.booleans()):
            pauses.append(Pause(start))
            break
        end = start + timedelta(days=draw(st.integers(0, 6)))
        pauses.append(Pause(start, end))
        cursor = end
    first = received + timedelta(days=draw(st.integers(0, 10)))
    last = first + timedelta(days=draw(st.integers(0, 30)))
    return dossier("HS", received, due, pauses=tuple(pauses)), first, last


@settings(max_examples=300, deadline=None)
@given(open_dossiers())
def test_open_status_runs_are_classify_open_on_every_day(case) -> None:
    one, first, last = case
    runs = open_status_runs(one, CALENDAR, first, last)
    expanded = [(run_from + timedelta(days=n), status) for run_from, run_through, status in runs
                for n in range((run_through - run_from).days + 1)]
    every_day = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert expanded == [(day, classify_open(one, CALENDAR, day)) for day in every_day]
    assert all(a[2] != b[2] for a, b in zip(runs, runs[1:]))  # runs are maximal


def test_open_status_runs_of_a_dossier_without_pauses() -> None:
    one = dossier("HS", date(2026, 11, 2), date(2026, 11, 6))
    assert open_status_runs(one, CALENDAR, date(2026, 11, 2), date(2026, 11, 10)) == [
        (date(2026, 11, 2), date(2026, 11, 6), OpenStatus.WITHIN_TIME),
        (date(2026, 11, 7), date(2026, 11, 10), OpenStatus.OVERDUE),
    ]
    assert open_status_runs(one, CALENDAR, date(2026, 11, 8), date(2026, 11, 7)) == []


def test_open_status_runs_refuse_a_dossier_returned_in_the_run() -> None:
    returned = dossier("HS", date(2026, 11, 2), date(2026, 11, 6), date(2026, 11, 5))
    try:
        open_status_runs(returned, CALENDAR, date(2026, 11, 2), date(2026, 11, 6))
    except Conflict as refused:
        assert refused.code == "already_returned"
    else:
        raise AssertionError("a returned dossier has no open status")
    assert open_status_runs(returned, CALENDAR, date(2026, 11, 2), date(2026, 11, 4))[0][2] is OpenStatus.WITHIN_TIME
