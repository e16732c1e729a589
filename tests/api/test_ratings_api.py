"""Rating presses over HTTP: one counted rating per served ticket, every other press flagged."""
from __future__ import annotations

import pytest

from .conftest import act, assert_error, issue

AT = "2026-11-23T09:05:00+07:00"


def press(client, headers, msg_id: str, level: str = "very_satisfied", **extra):
    body = {"msg_id": msg_id, "counter": "quay-1", "level": level, "at": AT, **extra}
    return client.post("/api/v1/ratings", json=body, headers=headers)


@pytest.fixture
def served(client, clerk, kiosk, clock) -> str:
    """A001 served at counter 1 and just finished; its id."""
    ticket_id = issue(client, kiosk).get_json()["id"]
    act(clerk, "next")
    clock.advance(minutes=5)
    act(clerk, "finish")
    return ticket_id


def today_ratings(client) -> dict:
    return client.get("/api/v1/stats/today").get_json()["ratings"]


def rating_rows(server) -> int:
    return server.store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]


def test_a_press_after_a_service_counts_once(client, rater, served, clock):
    clock.advance(seconds=10)
    first = press(client, rater, "rating-01:1:1", "very_satisfied")
    assert first.status_code == 201
    body = first.get_json()
    assert body["counted"] is True and body["flag"] is None
    assert body["ticket_id"] == served and body["clerk"] == "nguyen-van-an" and body["counter"] == "quay-1"
    assert body["msg_id"] == "rating-01:1:1" and body["level"] == "very_satisfied"

    second = press(client, rater, "rating-01:1:2", "unsatisfied")
    assert second.status_code == 201
    assert second.get_json()["counted"] is False and second.get_json()["flag"] == "already_rated"

    ratings = today_ratings(client)
    assert ratings["counted"] == 1 and ratings["flagged"] == 1
    assert ratings["flagged_by_reason"] == {"already_rated": 1}
    assert ratings["by_level"] == {"very_satisfied": 1, "satisfied": 0, "unsatisfied": 0}
    assert ratings["satisfaction_pct"] == 100.0


def test_the_counter_leaves_the_rating_state_once_rated(client, rater, served):
    assert client.get("/api/v1/counters/quay-1").get_json()["status"] == "rating"
    press(client, rater, "rating-01:1:1")
    counter = client.get("/api/v1/counters/quay-1").get_json()
    assert counter["status"] == "idle" and counter["rating_ticket_id"] is None


def test_a_repeated_msg_id_returns_the_first_and_changes_nothing(server, client, rater, served):
    first = press(client, rater, "rating-01:1:1", "satisfied")
    again = press(client, rater, "rating-01:1:1", "unsatisfied")
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json() == first.get_json()
    assert rating_rows(server) == 1
    ratings = today_ratings(client)
    assert ratings["counted"] == 1 and ratings["flagged"] == 0 and ratings["by_level"]["satisfied"] == 1


def test_a_repeated_msg_id_of_a_flagged_press_stays_flagged_once(server, client, rater):
    first = press(client, rater, "rating-01:1:1")
    again = press(client, rater, "rating-01:1:1")
    assert first.get_json()["flag"] == "nothing_to_rate" and again.status_code == 200
    assert rating_rows(server) == 1 and today_ratings(client)["flagged"] == 1


def test_a_press_after_the_window_is_flagged(client, rater, served, clock, config):
    clock.advance(seconds=config.rating.window_s + 1)
    response = press(client, rater, "rating-01:1:1")
    assert response.status_code == 201
    assert response.get_json()["counted"] is False and response.get_json()["flag"] == "after_window"
    ratings = today_ratings(client)
    assert ratings["counted"] == 0 and ratings["flagged_by_reason"] == {"after_window": 1}


def test_a_press_at_the_end_of_the_window_counts(client, rater, served, clock, config):
    clock.advance(seconds=config.rating.window_s)
    assert press(client, rater, "rating-01:1:1").get_json()["counted"] is True


def test_a_press_with_nothing_to_rate_is_flagged(client, rater):
    response = press(client, rater, "rating-01:1:1")
    assert response.status_code == 201
    assert response.get_json()["flag"] == "nothing_to_rate" and response.get_json()["ticket_id"] is None
    assert today_ratings(client)["flagged_by_reason"] == {"nothing_to_rate": 1}


def test_a_press_naming_its_ticket(client, rater, served):
    response = press(client, rater, "rating-01:1:1", ticket=served)
    assert response.get_json()["counted"] is True and response.get_json()["ticket_id"] == served
    assert press(client, rater, "rating-01:1:2", ticket=served).get_json()["flag"] == "already_rated"


def test_a_press_naming_an_unknown_ticket_is_flagged_not_counted(client, rater, served):
    response = press(client, rater, "rating-01:1:1", ticket="khong-co")
    assert response.status_code == 201 and response.get_json()["flag"] == "wrong_ticket"
    # The served ticket can still be rated afterwards.
    assert press(client, rater, "rating-01:1:2").get_json()["counted"] is True


def test_a_rating_from_the_manager_console(manager, served):
    assert manager.post("/api/v1/ratings", json={"msg_id": "m-1", "counter": "quay-1", "level": "satisfied", "at": AT}).status_code == 201


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"level": "happy"}, 400, "unknown_level"),
        ({"level": "Very_Satisfied"}, 400, "unknown_level"),
        ({"level": 1}, 400, "invalid_input"),
        ({"level": ""}, 400, "invalid_input"),
        ({"counter": "quay-9"}, 404, "unknown_counter"),
        ({"counter": 1}, 400, "invalid_input"),
        ({"at": "2026-11-23T09:05:00"}, 400, "invalid_input"),
        ({"at": "23/11/2026 09:05"}, 400, "invalid_input"),
        ({"at": 1795000000}, 400, "invalid_input"),
        ({"at": None}, 400, "invalid_input"),
        ({"msg_id": ""}, 400, "invalid_input"),
        ({"msg_id": "có dấu"}, 400, "invalid_input"),
        ({"msg_id": "x" * 129}, 400, "invalid_input"),
        ({"msg_id": 7}, 400, "invalid_input"),
        ({"reasons": ["wait"] * 9}, 400, "invalid_input"),
        ({"reasons": "wait"}, 400, "invalid_input"),
        ({"ticket": 5}, 400, "invalid_input"),
    ],
    ids=["level-unknown", "level-case", "level-int", "level-empty", "counter-unknown", "counter-int",
         "at-no-offset", "at-not-iso", "at-epoch", "at-null", "msg-id-empty", "msg-id-non-ascii", "msg-id-long",
         "msg-id-int", "reasons-9", "reasons-str", "ticket-int"],
)
def test_bad_presses_are_refused_and_not_stored(server, client, rater, served, change, status, code):
    body = {"msg_id": "rating-01:1:1", "counter": "quay-1", "level": "satisfied", "at": AT} | change
    assert_error(client.post("/api/v1/ratings", json=body, headers=rater), status, code)
    assert rating_rows(server) == 0
    # The served ticket can still be rated, with the same msg_id.
    assert press(client, rater, "rating-01:1:1").get_json()["counted"] is True


@pytest.mark.parametrize("missing", ["msg_id", "counter", "level", "at"])
def test_a_press_missing_a_field_is_400_naming_it(client, rater, missing):
    body = {"msg_id": "rating-01:1:1", "counter": "quay-1", "level": "satisfied", "at": AT}
    del body[missing]
    error = assert_error(client.post("/api/v1/ratings", json=body, headers=rater), 400, "invalid_input")
    assert [detail["path"] for detail in error["details"]] == [missing]
