"""Rating rules: bound once to the ticket just finished, within the window; misuse flagged."""
from __future__ import annotations

from datetime import timedelta

import pytest

from queue_server.domain import tickets as t
from queue_server.domain.counters import Action, CounterState, apply_action
from queue_server.domain.errors import InvalidInput, NotFound
from queue_server.domain.ratings import MisuseFlag, judge_press, level_score, press_time
from tests.conftest import MONDAY_9AM, make_config

CONFIG = make_config()
FINISHED_AT = MONDAY_9AM + timedelta(minutes=30)


def finished_at_counter():
    ticket = t.new_ticket("tk1", CONFIG.field("dat-dai"), 1, MONDAY_9AM, CONFIG)
    called = apply_action(CONFIG, CounterState("quay-1"), Action.NEXT, MONDAY_9AM + timedelta(minutes=20), clerk_id="an", current=None, waiting=[ticket])
    done = apply_action(CONFIG, called.counter, Action.FINISH, FINISHED_AT, clerk_id=None, current=called.announce, waiting=[])
    return done.tickets[0], done.counter


def press(state, ticket, *, after_s=10, already=False, named=None, device_at=None, level="satisfied", recent=0):
    return judge_press(
        CONFIG, state, level=level, received_at=FINISHED_AT + timedelta(seconds=after_s),
        named_ticket_id=named, candidate=ticket, candidate_already_rated=already, device_at=device_at,
        recent_presses=recent,
    )


def test_a_press_within_the_window_counts_and_binds_ticket_and_clerk():
    ticket, state = finished_at_counter()
    rating, new_state = press(state, ticket)
    assert rating.counted and rating.flag is None
    assert (rating.ticket_id, rating.clerk_id, rating.field_id) == ("tk1", "an", "dat-dai")
    assert new_state.rating_done and not new_state.awaiting_rating(FINISHED_AT + timedelta(seconds=11))


def test_second_press_is_flagged_already_rated():
    ticket, state = finished_at_counter()
    _, state = press(state, ticket)
    rating, _ = press(state, ticket, after_s=20, already=True)
    assert not rating.counted and rating.flag is MisuseFlag.ALREADY_RATED and rating.ticket_id == "tk1"


def test_press_after_the_window_is_flagged():
    ticket, state = finished_at_counter()
    rating, _ = press(state, ticket, after_s=CONFIG.rating.window_s + 1)
    assert not rating.counted and rating.flag is MisuseFlag.AFTER_WINDOW
    rating, _ = press(state, ticket, after_s=CONFIG.rating.window_s)
    assert rating.counted  # the last second of the window still counts


def test_press_with_nothing_to_rate():
    rating, state = press(CounterState("quay-1"), None)
    assert not rating.counted and rating.flag is MisuseFlag.NOTHING_TO_RATE and rating.ticket_id is None


def test_long_after_a_rated_service_an_unnamed_press_has_nothing_to_rate():
    ticket, state = finished_at_counter()
    rating, _ = press(state, ticket, after_s=3600, already=True)
    assert rating.flag is MisuseFlag.NOTHING_TO_RATE


def test_a_press_naming_a_ticket_not_finished_here_is_wrong_ticket():
    ticket, state = finished_at_counter()
    other_counter_state = CounterState("quay-2")
    rating, _ = press(other_counter_state, ticket, named="tk1")
    assert rating.flag is MisuseFlag.WRONG_TICKET and not rating.counted
    rating, _ = press(state, None, named="unknown")
    assert rating.flag is MisuseFlag.WRONG_TICKET


def test_late_delivery_from_an_outbox_is_judged_at_the_device_time():
    ticket, state = finished_at_counter()
    pressed = FINISHED_AT + timedelta(seconds=30)
    rating, _ = press(state, ticket, after_s=3600, named="tk1", device_at=pressed)
    assert rating.counted
    # A device clock that claims a time after the server received it is not believed.
    assert press_time(FINISHED_AT, FINISHED_AT + timedelta(seconds=60), FINISHED_AT + timedelta(hours=2)) == FINISHED_AT + timedelta(seconds=60)
    # Nor one before the service ended.
    assert press_time(FINISHED_AT, FINISHED_AT + timedelta(seconds=60), FINISHED_AT - timedelta(hours=3)) == FINISHED_AT + timedelta(seconds=60)


def test_unknown_level_and_counter_are_input_errors():
    ticket, state = finished_at_counter()
    with pytest.raises(InvalidInput):
        press(state, ticket, level="great")
    with pytest.raises(NotFound):
        press(CounterState("quay-9"), ticket)


def test_level_scores_scale_best_to_worst():
    assert [level_score(CONFIG.rating, level.id) for level in CONFIG.rating.levels] == [100.0, 50.0, 0.0]
    five = make_config(rating={"levels": [
        {"id": f"l{i}", "name": {"vi": f"Mức {i}", "en": f"Level {i}"}, "colour": "#000000", "satisfied": i < 3} for i in range(5)
    ]})
    assert [level_score(five.rating, f"l{i}") for i in range(5)] == [100.0, 75.0, 50.0, 25.0, 0.0]


def test_a_burst_of_presses_at_one_counter_is_flagged():
    ticket, state = finished_at_counter()
    rating, _ = press(state, ticket, recent=CONFIG.rating.burst_presses - 2)
    assert rating.counted
    rating, _ = press(state, ticket, recent=CONFIG.rating.burst_presses - 1)
    assert not rating.counted and rating.flag is MisuseFlag.BURST
