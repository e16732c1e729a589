"""Call order and the clerk's actions at a counter (plain domain, no database)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from queue_server.domain import tickets as t
from queue_server.domain.counters import Action, CounterState, CounterStatus, apply_action, choose_next
from queue_server.domain.errors import Conflict, DomainError, NotFound
from queue_server.domain.tickets import TicketStatus
from tests.conftest import MONDAY_9AM, make_config


def issue(config, field_id, number, minutes, priority=None):
    field = config.field(field_id)
    return t.new_ticket(f"{field.letter}{number}", field, number, MONDAY_9AM + timedelta(minutes=minutes), config, priority)


def call_order(config, counter_id, tickets, calls):
    """Call `calls` tickets in a row at one counter, finishing each; returns the codes."""
    state = CounterState(counter_id=counter_id)
    waiting = list(tickets)
    current = None
    order = []
    now = MONDAY_9AM + timedelta(hours=1)
    for _ in range(calls):
        now += timedelta(minutes=1)
        outcome = apply_action(config, state, Action.NEXT, now, clerk_id="an", current=current, waiting=waiting)
        state = outcome.counter
        current = outcome.announce
        waiting = [x for x in waiting if x.id != current.id]
        order.append(current.code)
    return order


def test_interleave_two_normal_then_one_priority():
    config = make_config()  # interleaved, 2 normal : 1 priority
    tickets = [
        issue(config, "dat-dai", 1, 0), issue(config, "dat-dai", 2, 1), issue(config, "dat-dai", 3, 2, "elderly"),
        issue(config, "dat-dai", 4, 3), issue(config, "dat-dai", 5, 4), issue(config, "dat-dai", 6, 5, "pregnant"),
        issue(config, "dat-dai", 7, 6), issue(config, "dat-dai", 8, 7),
    ]
    # The counter opens as if two normal tickets had just been called: the first priority
    # ticket goes first, then two normal, one priority, and the rest in order.
    assert call_order(config, "quay-1", tickets, 8) == ["A003", "A001", "A002", "A006", "A004", "A005", "A007", "A008"]


def test_interleave_one_to_one():
    config = make_config(priority={"policy": "interleaved", "normal_per_priority": 1})
    tickets = [issue(config, "dat-dai", n, n) for n in (1, 2, 3)] + [issue(config, "dat-dai", n, n, "merit") for n in (4, 5)]
    assert call_order(config, "quay-1", tickets, 5) == ["A004", "A001", "A005", "A002", "A003"]


def test_strict_priority_always_first():
    config = make_config(priority={"policy": "strict"})
    tickets = [issue(config, "dat-dai", 1, 0), issue(config, "dat-dai", 2, 1, "disabled"), issue(config, "dat-dai", 3, 2),
               issue(config, "dat-dai", 4, 3, "elderly")]
    assert call_order(config, "quay-1", tickets, 4) == ["A002", "A004", "A001", "A003"]


def test_counter_override_of_policy():
    config = make_config()  # quay-3 is strict in the test config, the site interleaved
    tickets = [issue(config, "ho-tich", 1, 0), issue(config, "ho-tich", 2, 1), issue(config, "ho-tich", 3, 2),
               issue(config, "ho-tich", 4, 3, "elderly"), issue(config, "ho-tich", 5, 4, "elderly")]
    assert call_order(config, "quay-3", tickets, 3) == ["B004", "B005", "B001"]


def test_counter_calls_only_its_fields_oldest_first():
    config = make_config()
    tickets = [issue(config, "ho-tich", 1, 0), issue(config, "dat-dai", 1, 1), issue(config, "dat-dai", 2, 2)]
    assert call_order(config, "quay-1", tickets, 2) == ["A001", "A002"]
    assert call_order(config, "quay-2", tickets, 3) == ["B001", "A001", "A002"]


def test_next_with_nobody_waiting():
    config = make_config()
    with pytest.raises(DomainError) as error:
        apply_action(config, CounterState("quay-1"), Action.NEXT, MONDAY_9AM, clerk_id="an", current=None, waiting=[])
    assert error.value.code == "queue_empty"


def test_next_finishes_the_current_ticket_and_opens_its_rating_window():
    config = make_config()
    first, second = issue(config, "dat-dai", 1, 0), issue(config, "dat-dai", 2, 1)
    now = MONDAY_9AM + timedelta(minutes=5)
    outcome = apply_action(config, CounterState("quay-1"), Action.NEXT, now, clerk_id="an", current=None, waiting=[first, second])
    called = outcome.announce
    later = now + timedelta(minutes=7)
    outcome = apply_action(config, outcome.counter, Action.NEXT, later, clerk_id="an", current=called, waiting=[second])
    finished, next_called = outcome.tickets
    assert finished.status is TicketStatus.FINISHED and finished.finished_at == later
    assert finished.service_s() == 7 * 60  # no explicit start: service counted from the call
    assert next_called.code == "A002" and outcome.counter.ticket_id == next_called.id
    assert outcome.counter.rating_ticket_id == finished.id
    assert outcome.counter.rating_until == later + timedelta(seconds=config.rating.window_s)


def test_ticket_times_through_a_full_service():
    config = make_config()
    ticket = issue(config, "dat-dai", 1, 0)
    state = CounterState("quay-1")
    called_at = MONDAY_9AM + timedelta(minutes=20)
    outcome = apply_action(config, state, Action.NEXT, called_at, clerk_id="an", current=None, waiting=[ticket])
    ticket = outcome.announce
    outcome = apply_action(config, outcome.counter, Action.RECALL, called_at + timedelta(minutes=1), clerk_id=None, current=ticket, waiting=[])
    assert outcome.repeat and outcome.announce.call_count == 2
    ticket = outcome.tickets[0]
    outcome = apply_action(config, outcome.counter, Action.START, called_at + timedelta(minutes=2), clerk_id=None, current=ticket, waiting=[])
    ticket = outcome.tickets[0]
    outcome = apply_action(config, outcome.counter, Action.FINISH, called_at + timedelta(minutes=12), clerk_id=None, current=ticket, waiting=[])
    ticket = outcome.tickets[0]
    assert ticket.called_at == called_at  # the first call counts for the wait
    assert ticket.wait_s() == 20 * 60 and ticket.service_s() == 10 * 60
    assert ticket.clerk_id == "an"
    assert t.served_within_target(ticket, 15) is False
    assert outcome.counter.status(called_at + timedelta(minutes=13)) is CounterStatus.RATING
    assert outcome.counter.status(called_at + timedelta(minutes=30)) is CounterStatus.IDLE


def test_no_show_only_before_service_starts():
    config = make_config()
    ticket = issue(config, "dat-dai", 1, 0)
    outcome = apply_action(config, CounterState("quay-1"), Action.NEXT, MONDAY_9AM, clerk_id="an", current=None, waiting=[ticket])
    started = apply_action(config, outcome.counter, Action.START, MONDAY_9AM, clerk_id=None, current=outcome.announce, waiting=[])
    with pytest.raises(DomainError) as error:
        apply_action(config, started.counter, Action.NO_SHOW, MONDAY_9AM, clerk_id=None, current=started.tickets[0], waiting=[])
    assert error.value.code == "not_waiting_for_citizen"
    missed = apply_action(config, outcome.counter, Action.NO_SHOW, MONDAY_9AM, clerk_id=None, current=outcome.announce, waiting=[])
    assert missed.tickets[0].status is TicketStatus.NO_SHOW and missed.counter.ticket_id is None
    assert missed.counter.rating_ticket_id is None  # nothing to rate after a no-show


@pytest.mark.parametrize("action", [Action.RECALL, Action.FINISH, Action.NO_SHOW, Action.START])
def test_actions_need_a_current_ticket(action):
    config = make_config()
    with pytest.raises(Conflict) as error:
        apply_action(config, CounterState("quay-1"), action, MONDAY_9AM, clerk_id="an", current=None, waiting=[])
    assert error.value.code == "no_current_ticket"


def test_closed_counter_refuses_calls_and_cannot_close_mid_service():
    config = make_config()
    closed = apply_action(config, CounterState("quay-1"), Action.CLOSE, MONDAY_9AM, clerk_id="an", current=None, waiting=[]).counter
    assert closed.status(MONDAY_9AM) is CounterStatus.CLOSED
    with pytest.raises(Conflict):
        apply_action(config, closed, Action.NEXT, MONDAY_9AM, clerk_id="an", current=None, waiting=[issue(config, "dat-dai", 1, 0)])
    reopened = apply_action(config, closed, Action.OPEN, MONDAY_9AM, clerk_id="an", current=None, waiting=[]).counter
    serving = apply_action(config, reopened, Action.NEXT, MONDAY_9AM, clerk_id="an", current=None, waiting=[issue(config, "dat-dai", 1, 0)])
    with pytest.raises(Conflict):
        apply_action(config, serving.counter, Action.CLOSE, MONDAY_9AM, clerk_id="an", current=serving.announce, waiting=[])


def test_unknown_counter():
    with pytest.raises(NotFound):
        apply_action(make_config(), CounterState("quay-9"), Action.NEXT, MONDAY_9AM, clerk_id=None, current=None, waiting=[])


def _called(config, counter_id, ticket):
    outcome = apply_action(config, CounterState(counter_id), Action.NEXT, MONDAY_9AM + timedelta(hours=1), clerk_id="an", current=None, waiting=[ticket])
    return outcome


def test_transfer_to_a_field_keeping_place():
    config = make_config()  # transfer_keeps_place defaults to true
    moved_ticket = issue(config, "dat-dai", 1, 0)
    outcome = _called(config, "quay-2", moved_ticket)
    later_ho_tich = issue(config, "ho-tich", 1, 30)
    moved = apply_action(config, outcome.counter, Action.TRANSFER, MONDAY_9AM + timedelta(hours=1, minutes=5), clerk_id=None,
                         current=outcome.announce, waiting=[], transfer_field="ho-tich")
    ticket = moved.tickets[0]
    assert ticket.status is TicketStatus.WAITING and ticket.field_id == "ho-tich" and ticket.issued_field_id == "dat-dai"
    assert ticket.code == "A001" and ticket.transfers == 1
    # It kept its place (issued at 09:00), so it goes before a ticket issued at 09:30.
    assert call_order(config, "quay-3", [later_ho_tich, ticket], 2) == ["A001", "B001"]


def test_transfer_without_keeping_place_goes_to_the_back():
    config = make_config(queue={"transfer_keeps_place": False})
    ticket = issue(config, "dat-dai", 1, 0)
    outcome = _called(config, "quay-2", ticket)
    waiting_ho_tich = issue(config, "ho-tich", 1, 30)
    moved = apply_action(config, outcome.counter, Action.TRANSFER, MONDAY_9AM + timedelta(hours=1, minutes=5), clerk_id=None,
                         current=outcome.announce, waiting=[], transfer_field="ho-tich").tickets[0]
    assert call_order(config, "quay-3", [waiting_ho_tich, moved], 2) == ["B001", "A001"]


def test_transfer_to_a_counter_is_called_only_there_and_first():
    config = make_config()
    ticket = issue(config, "dat-dai", 5, 50)
    outcome = _called(config, "quay-1", ticket)
    moved = apply_action(config, outcome.counter, Action.TRANSFER, MONDAY_9AM + timedelta(hours=1), clerk_id=None,
                         current=outcome.announce, waiting=[], transfer_counter="quay-2").tickets[0]
    assert moved.target_counter_id == "quay-2" and moved.field_id == "dat-dai"
    earlier = issue(config, "dat-dai", 1, 0)
    assert choose_next(config, config.counter("quay-1"), CounterState("quay-1"), [earlier, moved], MONDAY_9AM.date()).code == "A001"
    assert choose_next(config, config.counter("quay-2"), CounterState("quay-2"), [earlier, moved], MONDAY_9AM.date()).code == "A005"


@pytest.mark.parametrize(
    ("field", "counter", "code"),
    [(None, None, "transfer_target_missing"), (None, "quay-1", "transfer_to_self"), ("kinh-doanh", "quay-2", "counter_does_not_serve_field"),
     ("nope", None, "unknown_field"), (None, "quay-9", "unknown_counter")],
)
def test_transfer_rejects_bad_targets(field, counter, code):
    config = make_config()
    outcome = _called(config, "quay-1", issue(config, "dat-dai", 1, 0))
    with pytest.raises(DomainError) as error:
        apply_action(config, outcome.counter, Action.TRANSFER, MONDAY_9AM, clerk_id=None, current=outcome.announce, waiting=[],
                     transfer_field=field, transfer_counter=counter)
    assert error.value.code == code
