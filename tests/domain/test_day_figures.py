"""A day's figures kept record by record (DayFigures: what state/today and the boards read) equal
the figures of a batch over the same records, after any sequence of records put in, changed,
moved to another day and taken out. Hand-made records: no database."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.domain.dossiers import Channel, Dossier
from queue_server.domain.figures import DayFigures, RatingRecord, TicketRecord, period_and_days
from queue_server.domain.ratings import MisuseFlag
from queue_server.domain.tickets import TicketStatus
from tests.conftest import make_config
from tests.domain.test_figures import FIRST, at

CONFIG = make_config()
OTHER_DAY = FIRST + timedelta(days=1)
FIELDS = ["dat-dai", "ho-tich", "kinh-doanh", "khong-co"]  # the last is in no config
COUNTERS = [None, "quay-1", "quay-2", "quay-3", "quay-9"]
CLERKS = [None, "nguyen-van-an", "tran-thi-binh", "ai-do-tam-thoi"]
LEVELS = ["very_satisfied", "satisfied", "unsatisfied"]


@st.composite
def ticket_records(draw) -> TicketRecord:
    day = draw(st.sampled_from([FIRST, FIRST, FIRST, OTHER_DAY]))
    status = draw(st.sampled_from(list(TicketStatus)))
    issued = at(day, 8) + timedelta(microseconds=draw(st.integers(0, 3_600_000_000)))
    # Waits and service times with microseconds: their sums are not whole numbers of seconds.
    called = issued + timedelta(microseconds=draw(st.integers(0, 2_400_000_000))) if status != TicketStatus.WAITING else None
    started = called if called is not None and status in (TicketStatus.SERVING, TicketStatus.FINISHED) else None
    finished = started + timedelta(microseconds=draw(st.integers(0, 900_000_000))) if status == TicketStatus.FINISHED else None
    field_id = draw(st.sampled_from(FIELDS))
    return TicketRecord(
        day, draw(st.sampled_from([field_id, *FIELDS])), field_id, draw(st.sampled_from([status, status.value])),
        draw(st.sampled_from([None, "elderly"])), issued, called, started, finished,
        draw(st.sampled_from(COUNTERS)) if called else None, draw(st.sampled_from(CLERKS)) if called else None,
    )


@st.composite
def rating_records(draw) -> RatingRecord:
    counted = draw(st.booleans())
    return RatingRecord(
        draw(st.sampled_from([FIRST, FIRST, OTHER_DAY])), counted, draw(st.sampled_from(LEVELS)),
        None if counted else draw(st.sampled_from([None, *(str(flag) for flag in MisuseFlag)])),
        draw(st.sampled_from(FIELDS[:3] + [None])), draw(st.sampled_from(COUNTERS[1:])), draw(st.sampled_from(CLERKS)),
        draw(st.sampled_from([None, "t1", "t2", "t3"])), draw(st.sampled_from([None, "HS-1", "HS-2"])),
    )


@st.composite
def dossiers(draw) -> Dossier:
    received_on = FIRST - timedelta(days=draw(st.integers(0, 10)))
    returned = draw(st.sampled_from([None, received_on, FIRST - timedelta(days=1), FIRST]))
    return Dossier(
        code=draw(st.sampled_from(["HS-1", "HS-2", "HS-3"])), procedure="Thủ tục", field_id=draw(st.sampled_from(FIELDS[:3])),
        channel=draw(st.sampled_from(list(Channel))), received_on=received_on,
        due_date=received_on + timedelta(days=draw(st.integers(0, 8))),
        returned_on=returned if returned is None or returned >= received_on else None,
        ticket_id=draw(st.sampled_from([None, "t1", "t2"])),
    )


# Each step: which record (kind, id) becomes what (None: it is gone).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ticket"), st.sampled_from(["t1", "t2", "t3", "t4", "t5", "t6"]), st.none() | ticket_records()),
        st.tuples(st.just("rating"), st.integers(1, 6), st.none() | rating_records()),
        st.tuples(st.just("dossier"), st.just(""), dossiers()),
    ),
    max_size=40,
)


def batch(tickets: dict, ratings: dict, kept_dossiers: dict) -> dict:
    # The Store gives records in id order: what a batch recomputation from the database reads.
    return period_and_days(CONFIG, FIRST, FIRST, [tickets[k] for k in sorted(tickets)],
                           [ratings[k] for k in sorted(ratings)], list(kept_dossiers.values()), with_days=False)[0]


@settings(max_examples=300, deadline=None)
@given(steps)
def test_a_day_kept_record_by_record_equals_the_batch_after_every_step(sequence) -> None:
    day = DayFigures(CONFIG, FIRST)
    tickets: dict[str, TicketRecord] = {}
    ratings: dict[int, RatingRecord] = {}
    kept_dossiers: dict[str, Dossier] = {}
    for kind, key, record in sequence:
        if kind == "ticket":
            day.put_ticket(key, record)
            tickets.pop(key, None)
            if record is not None:
                tickets[key] = record
        elif kind == "rating":
            day.put_rating(key, record)
            ratings.pop(key, None)
            if record is not None:
                ratings[key] = record
        else:
            day.put_dossier(record.code, record)
            kept_dossiers[record.code] = record
        assert day.figures() == batch(tickets, ratings, kept_dossiers)
    assert day.newest_rating_id == max((k for k, r in ratings.items() if r.day == FIRST), default=0)


def test_a_caller_may_change_the_figures_it_was_given() -> None:
    day = DayFigures(CONFIG, FIRST)
    day.put_ticket("t1", TicketRecord(FIRST, "dat-dai", "dat-dai", TicketStatus.WAITING, None, at(FIRST, 8),
                                      None, None, None, None, None))
    first = day.figures()
    first["tickets"]["issued"] = 99
    first["by_field"]["dat-dai"]["tickets"].clear()
    assert day.figures()["tickets"]["issued"] == 1
    assert day.figures()["by_field"]["dat-dai"]["tickets"]["issued"] == 1


def test_a_group_emptied_is_gone_as_in_a_batch() -> None:
    """A clerk not in the config is listed while a record names them, and not after."""
    day = DayFigures(CONFIG, FIRST)
    called = at(FIRST, 8, 5)
    record = TicketRecord(FIRST, "dat-dai", "dat-dai", TicketStatus.CALLED, None, at(FIRST, 8), called, None, None,
                          "quay-1", "ai-do-tam-thoi")
    day.put_ticket("t1", record)
    assert "ai-do-tam-thoi" in day.figures()["by_clerk"]
    day.put_ticket("t1", record._replace(clerk_id="nguyen-van-an"))
    assert "ai-do-tam-thoi" not in day.figures()["by_clerk"]
    assert day.figures()["by_clerk"]["nguyen-van-an"]["tickets"]["at_counter"] == 1


def test_the_mean_wait_does_not_depend_on_the_order_of_the_records() -> None:
    """Waits with microseconds are summed exactly: no order of adding and taking out changes a mean."""
    waits_us = [333_333, 1_000_001, 2_666_667, 7, 123_456_789, 999_999]
    records = {
        f"t{n}": TicketRecord(FIRST, "dat-dai", "dat-dai", TicketStatus.CALLED, None, at(FIRST, 8),
                              at(FIRST, 8) + timedelta(microseconds=wait), None, None, "quay-1", None)
        for n, wait in enumerate(waits_us)
    }
    forwards, backwards = DayFigures(CONFIG, FIRST), DayFigures(CONFIG, FIRST)
    for key in records:
        forwards.put_ticket(key, records[key])
    for key in reversed(records):
        backwards.put_ticket(key, records[key])
        backwards.put_ticket("t0", None)
        backwards.put_ticket("t0", records["t0"])
    expected = round(sum(waits_us) / len(waits_us) / 1_000_000, 1)
    assert forwards.figures()["tickets"]["avg_wait_s"] == backwards.figures()["tickets"]["avg_wait_s"] == expected
    assert forwards.figures() == backwards.figures() == batch(records, {}, {})


def test_a_press_neither_counted_nor_flagged_still_keeps_its_clerk_listed() -> None:
    """Found by the property above: such a press tallies nothing, yet a batch lists its clerk;
    taking out another record of that clerk must not drop the clerk from the figures."""
    day = DayFigures(CONFIG, FIRST)
    press = RatingRecord(FIRST, False, "satisfied", None, "dat-dai", "quay-1", "ai-do-tam-thoi", None, None)
    day.put_rating(1, press)
    called = TicketRecord(FIRST, "dat-dai", "dat-dai", TicketStatus.CALLED, None, at(FIRST, 8), at(FIRST, 8, 5),
                          None, None, "quay-1", "ai-do-tam-thoi")
    day.put_ticket("t1", called)
    day.put_ticket("t1", None)
    assert "ai-do-tam-thoi" in day.figures()["by_clerk"]
    assert day.figures() == batch({}, {1: press}, {})
