"""The full-day benchmark's own arithmetic: the site it builds and how it turns events into latencies."""
from __future__ import annotations

import random

from bench.full_day import (
    Board,
    Press,
    Scale,
    arrivals,
    counter_fields,
    differences,
    distribution_ms,
    press_to_board_counter,
    press_to_board_today,
)
from tests.conftest import sample_config

FIELDS = ["dat-dai", "ho-tich", "dang-ky-kinh-doanh", "chung-thuc"]


def board_with(today=(), counter_events=None) -> Board:
    board = Board("127.0.0.1", 1, "board-test")  # never started: only its records are used
    board.today = list(today)
    board.counter_events = counter_events or {}
    return board


def press(ticket: str, at: float, counter: str = "quay-1") -> Press:
    return Press(msg_id=f"m-{ticket}", counter=counter, ticket_id=ticket, first=True, at_perf=at, at_wall=at)


def test_thirty_counters_serve_every_field_in_proportion_to_its_arrivals():
    served = counter_fields(FIELDS, 30)
    assert len(served) == 30
    primary = [fields[0] for fields in served]
    # The simulator's weights 3:4:2:3 of 30 counters.
    assert [primary.count(f) for f in FIELDS] == [8, 9, 5, 8]
    assert all(len(fields) == 2 for fields in served[2::3])  # every third counter helps a second field
    assert set(counter_fields(FIELDS, 4)[i][0] for i in range(4)) == set(FIELDS)


def test_arrivals_fill_the_day_with_a_morning_peak_and_share_out_over_kiosks():
    scale = Scale(tickets=2000, kiosks=7, counters=4, boards=1, day_s=100.0)
    schedule = arrivals(scale, sample_config(), random.Random(1))
    moments = sorted(at for kiosk in schedule for at, _field, _priority in kiosk)
    assert len(moments) == 2000 and 0 <= moments[0] and moments[-1] < 100.0
    assert max(len(k) for k in schedule) - min(len(k) for k in schedule) <= 1
    per_tenth = [sum(1 for at in moments if n * 10 <= at < (n + 1) * 10) for n in range(10)]
    assert per_tenth.index(max(per_tenth)) == 2  # 9:00–10:00, the third hour of 7:00–17:00
    assert 0.05 < sum(1 for k in schedule for *_, priority in k if priority) / 2000 < 0.15


def test_a_press_reaches_the_board_with_the_first_figures_that_count_it():
    board = board_with(today=[(1.0, "2026-11-23", 0, 5), (2.0, "2026-11-23", 1, 6), (3.0, "2026-11-23", 3, 7),
                              (4.0, "2026-11-24", 1, 1)])
    ranked = [
        (press("a", 0.5), "2026-11-23", 1),  # counted in the event at 2.0
        (press("b", 1.5), "2026-11-23", 2),  # the event at 2.0 has only one: the one at 3.0
        (press("c", 2.5), "2026-11-23", 3),
        (press("d", 3.5), "2026-11-24", 1),  # the next day's count starts again
        (press("e", 3.8), "2026-11-23", 4),  # no figures ever counted it: no sample
    ]
    assert press_to_board_today([board], ranked) == [1.5, 1.5, 0.5, 0.5]
    assert press_to_board_today([board, board], ranked[:1]) == [1.5, 1.5]


def test_a_press_reaches_the_counter_tile_when_the_counter_stops_asking_for_its_rating():
    board = board_with(counter_events={"quay-1": ([1.0, 2.0, 2.5, 4.0], ["a", "a", None, "b"])})
    assert press_to_board_counter([board], [(press("a", 1.5), "d", 1)]) == [1.0]
    assert press_to_board_counter([board], [(press("a", 4.5), "d", 1)]) == []  # nothing after it
    assert press_to_board_counter([board], [(press("z", 1.0, counter="quay-9"), "d", 1)]) == []


def test_figure_differences_name_their_key_path():
    same = {"tickets": {"issued": 3, "by": [1, 2]}, "ratings": {"counted": 1}}
    assert differences(same, {"tickets": {"issued": 3, "by": [1, 2]}, "ratings": {"counted": 1}}) == []
    assert differences(same, {"tickets": {"issued": 4, "by": [1, 2]}, "ratings": {}}) == [
        ".ratings.counted: only on one side", ".tickets.issued: 3 != 4"]


def test_latency_distribution_is_nearest_rank_in_milliseconds():
    summary = distribution_ms([i / 1000 for i in range(1, 101)])  # 1 … 100 ms
    assert summary == {"n": 100, "p50_ms": 50.0, "p90_ms": 90.0, "p99_ms": 99.0, "max_ms": 100.0, "mean_ms": 50.5}
    assert distribution_ms([]) == {"n": 0}


def test_a_late_today_with_an_older_count_does_not_hide_a_press_the_board_already_shows():
    # A `ratings` event (count 2) and then a `today` computed before it (count 1): the board
    # keeps showing 2, so a press ranked 2 is on the board from the first of the two.
    board = board_with(today=[(1.0, "d", 0, 5), (2.0, "d", 2, 5), (2.5, "d", 1, 5), (3.0, "d", 2, 6)])
    assert press_to_board_today([board], [(press("a", 1.5), "d", 2)]) == [0.5]
