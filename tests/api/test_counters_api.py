"""A clerk's counter actions over HTTP: calling, serving, finishing, transfers, opening and closing."""
from __future__ import annotations

import pytest

from .conftest import act, assert_error, issue


def ticket(client, ticket_id: str) -> dict:
    return client.get(f"/api/v1/tickets/{ticket_id}").get_json()


def test_list_and_get_counters(client):
    listed = client.get("/api/v1/counters").get_json()
    assert [c["counter"] for c in listed] == ["quay-1", "quay-2", "quay-3"]
    one = client.get("/api/v1/counters/quay-2").get_json()
    assert one == listed[1]
    assert one["number"] == 2 and one["fields"] == ["dat-dai", "ho-tich"] and one["status"] == "idle"
    assert_error(client.get("/api/v1/counters/quay-9"), 404, "unknown_counter")


def test_next_recall_start_finish(client, clerk, kiosk):
    first = issue(client, kiosk).get_json()
    second = issue(client, kiosk).get_json()

    called = act(clerk, "next")
    assert called.status_code == 200
    view = called.get_json()
    assert view["action"] == "next" and view["status"] == "serving"
    assert view["ticket"] == "A001" and view["ticket_id"] == first["id"] and view["ticket_status"] == "called"
    assert view["clerk"] == "nguyen-van-an" and view["clerk_name"] == "Nguyễn Văn An"
    assert [t["code"] for t in view["tickets"]] == ["A001"]
    assert ticket(client, first["id"])["status"] == "called"
    assert ticket(client, first["id"])["counter_number"] == 1
    assert ticket(client, second["id"])["people_ahead"] == 0

    recalled = act(clerk, "recall").get_json()
    assert recalled["action"] == "recall" and recalled["ticket"] == "A001" and recalled["ticket_status"] == "called"

    started = act(clerk, "start").get_json()
    assert started["action"] == "start" and started["ticket_status"] == "serving"

    finished = act(clerk, "finish").get_json()
    assert finished["action"] == "finish" and finished["status"] == "rating"
    assert finished["ticket"] is None and finished["rating_ticket_id"] == first["id"]
    assert finished["rating_until"] == "2026-11-23T02:02:00+00:00"  # window_s = 120
    assert ticket(client, first["id"])["status"] == "finished"
    assert client.get("/api/v1/counters/quay-1").get_json()["status"] == "rating"


def test_next_while_serving_finishes_the_current_ticket(client, clerk, kiosk):
    first = issue(client, kiosk).get_json()
    second = issue(client, kiosk).get_json()
    act(clerk, "next")
    view = act(clerk, "next").get_json()
    assert [(t["code"], t["status"]) for t in view["tickets"]] == [("A001", "finished"), ("A002", "called")]
    assert view["ticket_id"] == second["id"]
    assert ticket(client, first["id"])["status"] == "finished"


def test_next_on_an_empty_queue_is_422(clerk, client, kiosk):
    assert_error(act(clerk, "next"), 422, "queue_empty")
    issue(client, kiosk, "kinh-doanh")  # counter 1 does not serve it
    assert_error(act(clerk, "next"), 422, "queue_empty")
    assert act(clerk, "next", "quay-3").get_json()["ticket"] == "C001"


def test_next_after_the_last_ticket_finishes_it_and_answers_200(clerk, client, kiosk):
    only = issue(client, kiosk).get_json()
    act(clerk, "next")
    view = act(clerk, "next")
    assert view.status_code == 200
    assert view.get_json()["status"] == "rating" and view.get_json()["rating_ticket_id"] == only["id"]


@pytest.mark.parametrize("action", ["finish", "recall", "start", "no-show"])
def test_an_action_on_the_current_ticket_without_one_is_409(clerk, action):
    assert_error(act(clerk, action), 409, "no_current_ticket")


def test_transfer_without_a_ticket_is_409(clerk):
    assert_error(act(clerk, "transfer", json={"field": "ho-tich"}), 409, "no_current_ticket")


def test_no_show(client, clerk, kiosk):
    missed = issue(client, kiosk).get_json()
    act(clerk, "next")
    view = act(clerk, "no-show").get_json()
    assert view["action"] == "no_show" and view["status"] == "idle" and view["ticket"] is None
    assert view["rating_ticket_id"] is None  # nothing to rate after a no-show
    assert ticket(client, missed["id"])["status"] == "no_show"


def test_the_order_of_a_service_is_enforced(client, clerk, kiosk):
    issue(client, kiosk)
    act(clerk, "next")
    act(clerk, "start")
    assert_error(act(clerk, "start"), 422, "not_called")
    assert_error(act(clerk, "no-show"), 422, "not_waiting_for_citizen")
    assert act(clerk, "finish").status_code == 200
    assert_error(act(clerk, "finish"), 409, "no_current_ticket")


def test_close_and_open(client, clerk, kiosk):
    issue(client, kiosk)
    act(clerk, "next")
    assert_error(act(clerk, "close"), 409, "ticket_in_progress")
    act(clerk, "finish")
    closed = act(clerk, "close").get_json()
    assert closed["action"] == "close" and closed["status"] == "closed"
    assert client.get("/api/v1/counters/quay-1").get_json()["status"] == "closed"
    issue(client, kiosk)
    for action in ("next", "recall", "start", "finish", "no-show"):
        assert_error(act(clerk, action), 409, "counter_closed")
    assert_error(act(clerk, "transfer", json={"field": "ho-tich"}), 409, "counter_closed")
    opened = act(clerk, "open").get_json()
    assert opened["action"] == "open" and opened["status"] != "closed" and opened["clerk"] == "nguyen-van-an"
    assert act(clerk, "next").get_json()["ticket"] == "A002"


@pytest.mark.parametrize("action", ["skip", "no_show", "NEXT", "next ", "delete"])
def test_an_unknown_action_is_404(clerk, action):
    assert_error(act(clerk, action), 404, "unknown_action")


@pytest.mark.parametrize("action", ["next", "open", "close", "transfer"])
def test_an_unknown_counter_is_404(clerk, action):
    assert_error(act(clerk, action, "quay-9", json={"field": "ho-tich"}), 404, "unknown_counter")


def test_a_failed_action_changes_nothing(client, clerk, kiosk):
    issue(client, kiosk)
    act(clerk, "next")
    before = client.get("/api/v1/counters/quay-1").get_json()
    assert_error(act(clerk, "close"), 409)
    assert_error(act(clerk, "transfer", json={"counter": "quay-1"}), 422)
    assert client.get("/api/v1/counters/quay-1").get_json() == before


# --- transfers ---------------------------------------------------------------------------------


def test_transfer_to_another_field(client, clerk, kiosk):
    moved = issue(client, kiosk, "dat-dai").get_json()
    act(clerk, "next")
    view = act(clerk, "transfer", json={"field": "kinh-doanh"}).get_json()
    assert view["action"] == "transfer" and view["ticket"] is None and view["status"] == "idle"
    after = view["tickets"][0]
    assert after["id"] == moved["id"] and after["status"] == "waiting"
    assert after["field"] == "kinh-doanh" and after["issued_field"] == "dat-dai" and after["code"] == "A001"
    assert_error(act(clerk, "next"), 422, "queue_empty")  # counter 1 does not serve kinh-doanh
    assert act(clerk, "next", "quay-3").get_json()["ticket_id"] == moved["id"]


def test_transfer_to_a_counter_goes_before_its_line(client, clerk, kiosk):
    issue(client, kiosk, "dat-dai")
    waiting = issue(client, kiosk, "dat-dai").get_json()
    moved = act(clerk, "next").get_json()["ticket_id"]
    view = act(clerk, "transfer", json={"counter": "quay-2"}).get_json()
    assert view["tickets"][0]["field"] == "dat-dai"
    # Counter 1 may not take it back; counter 2 takes it before A002, which waited in line.
    assert act(clerk, "next").get_json()["ticket_id"] == waiting["id"]
    assert act(clerk, "next", "quay-2").get_json()["ticket_id"] == moved


def test_transfer_to_a_counter_and_one_of_its_fields(client, clerk, kiosk):
    issue(client, kiosk, "dat-dai")
    act(clerk, "next")
    view = act(clerk, "transfer", json={"counter": "quay-3", "field": "ho-tich"}).get_json()
    assert view["tickets"][0]["field"] == "ho-tich"
    assert act(clerk, "next", "quay-3").get_json()["ticket"] == "A001"


def test_transfer_keep_place_false_goes_to_the_back(client, clerk, kiosk, clock):
    issue(client, kiosk, "dat-dai")
    act(clerk, "next")
    clock.advance(minutes=1)
    issue(client, kiosk, "ho-tich")
    clock.advance(minutes=1)
    act(clerk, "transfer", json={"field": "ho-tich", "keep_place": False})
    # A001 now queues behind B001 in ho-tich (it re-entered the line after B001 was issued).
    assert act(clerk, "next", "quay-3").get_json()["ticket"] == "B001"


def test_transfer_keeping_its_place_goes_first(client, clerk, kiosk, clock):
    issue(client, kiosk, "dat-dai")
    act(clerk, "next")
    clock.advance(minutes=1)
    issue(client, kiosk, "ho-tich")
    act(clerk, "transfer", json={"field": "ho-tich", "keep_place": True})
    assert act(clerk, "next", "quay-3").get_json()["ticket"] == "A001"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "transfer_target_missing"),
        ({"field": None, "counter": None}, 422, "transfer_target_missing"),
        ({"field": 123}, 400, "invalid_input"),
        ({"counter": 2}, 400, "invalid_input"),
        ({"field": "Hộ tịch"}, 400, "invalid_input"),
        ({"field": "ho-tich", "keep_place": "yes"}, 400, "invalid_input"),
        ({"field": "ho-tich", "keep_place": 1}, 400, "invalid_input"),
        ({"field": "khong-co"}, 404, "unknown_field"),
        ({"counter": "quay-9"}, 404, "unknown_counter"),
        ({"counter": "quay-1"}, 422, "transfer_to_self"),
        ({"counter": "quay-1", "field": "ho-tich"}, 422, "transfer_to_self"),
        ({"counter": "quay-2", "field": "kinh-doanh"}, 422, "counter_does_not_serve_field"),
    ],
    ids=["empty", "nulls", "field-int", "counter-int", "field-vietnamese", "keep-place-str", "keep-place-int",
         "unknown-field", "unknown-counter", "to-self", "to-self-with-field", "counter-without-field"],
)
def test_transfer_body_validation(client, clerk, kiosk, body, status, code):
    held = issue(client, kiosk).get_json()
    act(clerk, "next")
    assert_error(act(clerk, "transfer", json=body), status, code)
    # Nothing moved: the ticket is still called at counter 1.
    assert ticket(client, held["id"])["status"] == "called"
    assert client.get("/api/v1/counters/quay-1").get_json()["ticket_id"] == held["id"]


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [({}, 415), ({"data": "field=ho-tich", "content_type": "application/x-www-form-urlencoded"}, 415),
     ({"data": b'{"field": ', "content_type": "application/json"}, 400)],
    ids=["no-body", "form", "malformed"],
)
def test_transfer_needs_a_json_body(client, clerk, kiosk, kwargs, status):
    issue(client, kiosk)
    act(clerk, "next")
    assert_error(act(clerk, "transfer", **kwargs), status)


def test_other_actions_ignore_a_well_formed_body(client, clerk, kiosk):
    issue(client, kiosk)
    assert act(clerk, "next", json={"anything": 1}).get_json()["ticket"] == "A001"
