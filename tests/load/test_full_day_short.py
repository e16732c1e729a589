"""The compressed full day (bench/full_day.py) at CI scale: behaviour, not speed.

One run of the real thing — the server as `motcua serve` in a child process, a real Mosquitto,
5 kiosks, 4 clerks over HTTP, 4 rating terminals and 2 board streams, 300 tickets — shared by
the tests below. They check what must hold at any speed: every figure equals its
recomputation from history, nothing is lost or counted twice, every client got its answers.
Latency targets are the benchmark's business (bench/run), never asserted here.
"""
from __future__ import annotations

import pytest

from bench.full_day import SHORT, run
from queue_server.mqtt.broker import mosquitto_available

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def day() -> dict:
    if not mosquitto_available():
        pytest.fail("mosquitto is not installed: run `bash scripts/quickstart.sh test` as root to install it")
    return run(SHORT)


def test_every_figure_equals_its_recomputation_from_history(day):
    assert day["checks"]["figures_equal_history"], day["check_details"]["figure_differences"]


def test_tickets_issued_are_exactly_what_the_kiosks_received(day):
    counts = day["counts"]
    assert day["checks"]["every_request_answered"], counts
    assert counts["kiosk_requests"] == counts["kiosk_tickets"] == counts["tickets_in_database"] == SHORT.tickets
    assert counts["kiosk_timeouts"] == 0 and counts["kiosk_errors"] == {}
    assert day["checks"]["tickets_issued_equal_kiosk_tickets"]
    assert counts["duplicate_ticket_numbers"] == 0


def test_every_ticket_is_called_seen_on_every_board_and_served(day):
    counts = day["counts"]
    assert counts["calls"] >= SHORT.tickets
    assert counts["board_calls_not_seen"] == 0
    assert counts["finished"] + counts["no_shows"] == SHORT.tickets
    by_status = counts["tickets_by_status"]
    assert set(by_status) <= {"finished", "no_show"}, by_status  # nobody left waiting or at a counter
    assert by_status.get("finished", 0) == counts["finished"] and by_status.get("no_show", 0) == counts["no_shows"]
    assert counts["clerk_errors"] == {}
    assert day["checks"]["every_ticket_served"] and day["checks"]["every_call_on_every_board"]


def test_no_press_is_lost_and_none_counts_twice(day):
    counts = day["counts"]
    assert counts["presses_published"] == counts["ratings_rows"] > 0
    assert counts["presses_lost"] == 0 and counts["unexpected_rating_rows"] == 0
    # Every citizen's first press counts, bound to the ticket the terminal was asked to rate…
    assert counts["ratings_counted"] == counts["first_presses"] == counts["first_presses_bound_to_their_ticket"]
    # …and an impatient second press is kept, flagged, never counted.
    assert counts["second_presses_counted"] == 0 and counts["tickets_counted_twice"] == 0
    assert sum(counts["ratings_flagged"].values()) == counts["second_presses"]
    assert counts["rejects"] == {}
    assert day["checks"]["ratings_zero_loss"] and day["checks"]["ratings_none_counted_twice"]
    assert day["checks"]["every_rating_asked_for"], counts["ratings_not_asked_for"]


def test_boards_end_with_the_servers_figures_and_every_latency_was_measured(day):
    assert day["checks"]["boards_show_final_figures"], day["check_details"]
    assert day["checks"]["no_client_errors"], day["check_details"]
    # Each measured path has a sample for every event it covers (the values are not judged here).
    counts = day["counts"]
    assert day["ticket_request_to_response"]["n"] == SHORT.tickets
    assert day["call_to_board"]["n"] == counts["calls"] * SHORT.boards
    assert day["press_to_counted"]["n"] == counts["first_presses"]
    assert day["press_to_board"]["n"] == counts["first_presses"] * SHORT.boards
    assert day["press_to_board"]["samples_missing"] == 0
    assert day["server"]["peak_rss_mb"] > 0 and day["server"]["cpu_s"] > 0
    assert day["checks"]["all_passed"]


def test_the_kiosks_ran_in_their_own_processes_and_heard_only_what_a_kiosk_hears(day):
    assert day["setup"]["scale"]["kiosk_processes"] == SHORT.kiosk_processes == 2
    cpu = day["other_processes_cpu_s"]
    assert len(cpu["kiosk_processes"]) == 2 and all(seconds > 0 for seconds in cpu["kiosk_processes"])
    assert cpu["clients_all_processes"] >= cpu["clients_this_process"]
    counts = day["counts"]
    # The config, the queues and the server's status (not today's figures, counters or calls):
    # every issue and every call changes one queue, a few messages per ticket and kiosk.
    assert 0 < counts["kiosk_state_messages_heard"] < 5 * SHORT.kiosks * SHORT.tickets
    assert counts["kiosk_answers_after_giving_up"] == 0

