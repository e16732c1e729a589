"""Issuing and following tickets over HTTP: numbering, idempotency, caps, hours, the QR page."""
from __future__ import annotations

import copy

import pytest

from queue_server.accounts import create_device_token
from queue_server.domain.timeutil import FixedClock
from queue_server.server import build
from tests.conftest import BASE_CONFIG, MONDAY_9AM, make_config

from .conftest import assert_error, issue, local


def ticket_count(server) -> int:
    return server.store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]


# --- issuing -----------------------------------------------------------------------------------


def test_a_ticket_is_201_with_consecutive_codes_per_field(client, kiosk):
    first = issue(client, kiosk, "dat-dai")
    assert first.status_code == 201
    body = first.get_json()
    assert body["code"] == "A001" and body["number"] == 1 and body["letter"] == "A"
    assert body["field"] == "dat-dai" and body["field_name"] == {"vi": "Đất đai", "en": "Land"}
    assert body["status"] == "waiting" and body["service_day"] == "2026-11-23"
    assert body["issued_at"] == "2026-11-23T02:00:00+00:00"
    assert body["url"] == f"/t/{body['id']}"
    assert body["people_ahead"] == 0 and body["priority"] is None and body["lang"] == "vi"
    codes = [issue(client, kiosk, field).get_json()["code"] for field in ("dat-dai", "ho-tich", "dat-dai", "kinh-doanh")]
    assert codes == ["A002", "B001", "A003", "C001"]


def test_ticket_ids_are_distinct_and_unguessable(client, kiosk):
    ids = [issue(client, kiosk).get_json()["id"] for _ in range(5)]
    assert len(set(ids)) == 5 and all(len(ticket_id) >= 12 for ticket_id in ids)


def test_people_ahead_and_estimated_wait(client, kiosk):
    for _ in range(2):
        issue(client, kiosk, "dat-dai")
    third = issue(client, kiosk, "dat-dai").get_json()
    # Two ahead, avg_service_min 10, two counters serve dat-dai (neither opened: all count).
    assert third["people_ahead"] == 2 and third["est_wait_s"] == 600
    other_field = issue(client, kiosk, "kinh-doanh").get_json()
    assert other_field["people_ahead"] == 0 and other_field["est_wait_s"] == 0


def test_a_priority_ticket_goes_ahead_in_the_estimate(client, kiosk):
    issue(client, kiosk, "dat-dai")
    elderly = issue(client, kiosk, "dat-dai", priority="elderly")
    assert elderly.status_code == 201
    assert elderly.get_json()["priority"] == "elderly" and elderly.get_json()["people_ahead"] == 0


def test_english_tickets_keep_their_language(client, kiosk):
    assert issue(client, kiosk, lang="en").get_json()["lang"] == "en"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"field": 123}, 400, "invalid_input"),
        ({}, 400, "invalid_input"),
        ({"field": None}, 400, "invalid_input"),
        ({"field": "Đất đai"}, 400, "invalid_input"),
        ({"field": "DAT-DAI"}, 400, "invalid_input"),
        ({"field": ["dat-dai"]}, 400, "invalid_input"),
        ({"field": "dat-dai", "priority": 1}, 400, "invalid_input"),
        ({"field": "dat-dai", "priority": "vip"}, 400, "unknown_priority"),
        ({"field": "dat-dai", "lang": "fr"}, 400, "invalid_input"),
        ({"field": "khong-co"}, 404, "unknown_field"),
    ],
    ids=["field-int", "no-field", "field-null", "field-vietnamese", "field-upper", "field-list",
         "priority-int", "priority-unknown", "lang-fr", "field-unknown"],
)
def test_bad_ticket_requests_issue_nothing(server, client, kiosk, body, status, code):
    assert_error(client.post("/api/v1/tickets", json=body, headers=kiosk), status, code)
    assert ticket_count(server) == 0


def test_a_refused_request_does_not_use_up_a_number(client, kiosk):
    assert_error(issue(client, kiosk, priority="vip"), 400, "unknown_priority")
    assert issue(client, kiosk).get_json()["code"] == "A001"


# --- idempotency -------------------------------------------------------------------------------


def test_a_repeated_idempotency_key_returns_the_same_ticket(server, client, kiosk):
    first = client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=kiosk | {"Idempotency-Key": "kiosk-01:7:15"})
    again = client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=kiosk | {"Idempotency-Key": "kiosk-01:7:15"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"] and again.get_json()["code"] == "A001"
    assert ticket_count(server) == 1
    assert issue(client, kiosk).get_json()["code"] == "A002"


def test_the_same_key_for_a_different_request_is_409(server, client, kiosk):
    key = kiosk | {"Idempotency-Key": "tx-1"}
    assert client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=key).status_code == 201
    assert_error(client.post("/api/v1/tickets", json={"field": "ho-tich"}, headers=key), 409, "idempotency_key_reused")
    assert_error(client.post("/api/v1/tickets", json={"field": "dat-dai", "priority": "elderly"}, headers=key),
                 409, "idempotency_key_reused")
    assert ticket_count(server) == 1


def test_keys_belong_to_one_device(server, client, kiosk):
    other = {"Authorization": f"Bearer {create_device_token(server.store, 'kiosk-02', server.service.now())}"}
    first = client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=kiosk | {"Idempotency-Key": "tx-1"})
    second = client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=other | {"Idempotency-Key": "tx-1"})
    assert first.status_code == second.status_code == 201
    assert [first.get_json()["code"], second.get_json()["code"]] == ["A001", "A002"]


def test_a_repeated_key_still_answers_after_the_cap_is_reached(client, kiosk):
    key = kiosk | {"Idempotency-Key": "tx-last"}
    for _ in range(4):
        issue(client, kiosk, "ho-tich")
    fifth = client.post("/api/v1/tickets", json={"field": "ho-tich"}, headers=key)
    assert fifth.get_json()["code"] == "B005"
    again = client.post("/api/v1/tickets", json={"field": "ho-tich"}, headers=key)
    assert again.status_code == 200 and again.get_json()["id"] == fifth.get_json()["id"]


@pytest.mark.parametrize("key", ["", "k" * 129], ids=["empty", "too-long"])
def test_a_bad_idempotency_key_is_400(server, client, kiosk, key):
    response = client.post("/api/v1/tickets", json={"field": "dat-dai"}, headers=kiosk | {"Idempotency-Key": key})
    assert_error(response, 400, "bad_idempotency_key")
    assert ticket_count(server) == 0


# --- rules of the centre -----------------------------------------------------------------------


def test_the_daily_cap_is_422_and_other_fields_go_on(client, kiosk, clock):
    codes = [issue(client, kiosk, "ho-tich").get_json()["code"] for _ in range(5)]
    assert codes == ["B001", "B002", "B003", "B004", "B005"]
    error = assert_error(issue(client, kiosk, "ho-tich"), 422, "daily_cap_reached")
    assert error["details"] == {"cap": 5}
    assert issue(client, kiosk, "dat-dai").status_code == 201
    clock.advance(days=1)  # Tuesday 09:00: a new day, a new cap
    assert issue(client, kiosk, "ho-tich").get_json()["code"] == "B001"


@pytest.mark.parametrize(
    "at",
    [
        local(2026, 11, 23, 20, 0),  # Monday evening
        local(2026, 11, 23, 7, 29),  # just before opening
        local(2026, 11, 23, 11, 30),  # lunch starts
        local(2026, 11, 23, 17, 0),  # closing time
        local(2026, 11, 22, 9, 0),  # Sunday
        local(2026, 11, 28, 9, 0),  # Saturday
        local(2026, 12, 31, 9, 0),  # a holiday (a Thursday)
        local(2027, 1, 1, 9, 0),  # a holiday (a Friday)
    ],
    ids=["evening", "before-opening", "lunch", "closing", "sunday", "saturday", "holiday-dec-31", "holiday-jan-1"],
)
def test_outside_opening_hours_is_422(server, client, kiosk, clock, at):
    clock.set(at)
    assert_error(issue(client, kiosk), 422, "outside_opening_hours")
    assert ticket_count(server) == 0


@pytest.mark.parametrize("at", [local(2026, 11, 23, 7, 30), local(2026, 11, 23, 13, 30), local(2026, 11, 23, 16, 59)],
                         ids=["opening", "afternoon", "last-minute"])
def test_inside_opening_hours_is_201(client, kiosk, clock, at):
    clock.set(at)
    assert issue(client, kiosk).status_code == 201


@pytest.fixture
def closed_server(tmp_path):
    fields = copy.deepcopy(BASE_CONFIG["fields"])
    fields[2]["closed"] = True  # kinh-doanh
    built = build(make_config(fields=fields), tmp_path / "closed", clock=FixedClock(MONDAY_9AM))
    yield built
    built.store.close()


def test_a_closed_field_is_422(closed_server):
    client = closed_server.app.test_client()
    token = create_device_token(closed_server.store, "kiosk-01", closed_server.service.now())
    headers = {"Authorization": f"Bearer {token}"}
    assert_error(issue(client, headers, "kinh-doanh"), 422, "field_closed")
    assert issue(client, headers, "dat-dai").status_code == 201


# --- following a ticket ------------------------------------------------------------------------


def test_get_a_ticket_by_id(client, kiosk):
    issued = issue(client, kiosk).get_json()
    issue(client, kiosk)
    response = client.get(f"/api/v1/tickets/{issued['id']}")  # no token, no login: the id is the key
    assert response.status_code == 200
    assert response.get_json() == issued


@pytest.mark.parametrize("ticket_id", ["nope", "A001", "x" * 200, "%00"], ids=["nope", "code", "long", "nul"])
def test_an_unknown_ticket_is_404(client, kiosk, ticket_id):
    issue(client, kiosk)  # A001 exists, but only its id finds it
    assert_error(client.get(f"/api/v1/tickets/{ticket_id}"), 404, "unknown_ticket")
    assert_error(client.get(f"/t/{ticket_id}"), 404, "unknown_ticket")


def test_the_qr_page_is_html_in_vietnamese(client, kiosk):
    issue(client, kiosk)
    ticket = issue(client, kiosk).get_json()
    response = client.get(f"/t/{ticket['id']}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<html lang="vi">' in page
    assert '<div class="code" id="code">A002</div>' in page
    assert "Trung tâm Phục vụ hành chính công (thử)" in page and "Đất đai" in page
    assert "Đang chờ" in page and "người trước bạn" in page
    assert f'"/api/v1/tickets/{ticket["id"]}"' in page


def test_the_qr_page_escapes_what_it_shows(tmp_path):
    config = make_config(site={"id": "hcc-test", "name": {"vi": "<script>alert(1)</script>", "en": "Test"}})
    built = build(config, tmp_path / "xss", clock=FixedClock(MONDAY_9AM))
    try:
        ticket = built.service.issue_ticket("dat-dai")[0]
        page = built.app.test_client().get(f"/t/{ticket['id']}").get_data(as_text=True)
        assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    finally:
        built.store.close()
