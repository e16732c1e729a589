"""The topic map and payload schemas: what parses, what is rejected and with which reason."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from queue_server.mqtt import contract
from queue_server.mqtt.contract import (
    MAX_PAYLOAD_BYTES,
    REJECT_REASONS,
    TOPICS,
    CallEvent,
    Direction,
    Kind,
    PayloadRejected,
    RatingEvent,
    Status,
    TicketResponse,
    encode,
    parse_from_server,
    parse_inbound,
)

SITE = "hcc-hanoi"
ICT = timezone(timedelta(hours=7))
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=ICT)

RATING_TOPIC = contract.topic_rating(SITE, "rating-03")
KEYPAD_TOPIC = contract.topic_keypad(SITE, "keypad-03")
PRINTER_TOPIC = contract.topic_printer(SITE, "kiosk-01")
REQUEST_TOPIC = contract.topic_ticket_request(SITE, "kiosk-01")
STATUS_TOPIC = contract.topic_device_status(SITE, "kiosk-01")


def rating(**changes: object) -> bytes:
    body: dict[str, object] = {"msg_id": "rating-03:7:42", "counter": "quay-3",
                               "level": "very_satisfied", "at": "2026-11-23T09:29:58+07:00"}
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}, ensure_ascii=False).encode()


def keypad(**changes: object) -> bytes:
    return json.dumps({"msg_id": "keypad-03:1:9", "counter": "quay-3", "action": "next", **changes}).encode()


def printer(**changes: object) -> bytes:
    return json.dumps({"msg_id": "kiosk-01:2:5", "state": "paper_low", **changes},
                      ensure_ascii=False).encode()


def request(**changes: object) -> bytes:
    return json.dumps({"transaction": "kiosk-01-8f2c", "field": "dat-dai", **changes},
                      ensure_ascii=False).encode()


ALERT = {"id": 3, "rule": "printer", "kind": "printer_problem", "subject": "kiosk-01", "severity": "critical",
         "message": {"vi": "Máy in của kiosk-01: hết giấy", "en": "Printer of kiosk-01: out of paper"},
         "since": "2026-11-23T09:12:00+07:00", "details": {"device": "kiosk-01", "printer_state": "paper_out"}}
VALID_SERVER_PAYLOADS: dict[Kind, tuple[str, dict]] = {
    Kind.TICKET_RESPONSE: (contract.topic_ticket_response(SITE, "kiosk-01"), {
        "transaction": "kiosk-01-8f2c", "status": "ok",
        "data": {"ticket_id": "20261123-A015", "code": "A015", "field": "dat-dai", "ahead": 4,
                 "est_wait_s": 720, "issued_at": "2026-11-23T09:30:00+07:00",
                 "url": "http://192.168.1.10:8080/t/20261123-A015"}}),
    Kind.CONFIG: (contract.topic_config(SITE), {
        "site": SITE, "name": {"vi": "Trung tâm Phục vụ hành chính công", "en": "Public Service Centre"},
        "timezone": "Asia/Ho_Chi_Minh",
        "fields": [{"id": "dat-dai", "letter": "A", "name": {"vi": "Đất đai", "en": "Land"},
                    "target_wait_min": 15}],
        "counters": [{"id": "quay-3", "number": 3, "fields": ["dat-dai"]}],
        "rating_scale": [
            {"id": "very_satisfied", "name": {"vi": "Rất hài lòng", "en": "Very satisfied"},
             "colour": "#1E8E3E", "satisfied": True},
            {"id": "satisfied", "name": {"vi": "Hài lòng", "en": "Satisfied"},
             "colour": "#1A73E8", "satisfied": True},
            {"id": "unsatisfied", "name": {"vi": "Không hài lòng", "en": "Unsatisfied"},
             "colour": "#D93025", "satisfied": False}],
        "rating_reasons": [{"id": "slow", "name": {"vi": "Chậm", "en": "Slow"}}],
        "rating_window_s": 120,
        "priorities": [{"id": "elderly", "name": {"vi": "Người cao tuổi", "en": "Elderly person"}}],
        "opening_hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "open": "07:30", "close": "11:30"}],
        "holidays": ["2026-12-31"],
        "updated_at": "2026-11-23T07:00:00+07:00"}),
    Kind.COUNTER_STATE: (contract.topic_counter_state(SITE, "quay-3"), {
        "counter": "quay-3", "clerk": "Nguyễn Thị Lan", "status": "serving", "ticket": "A015"}),
    Kind.QUEUE_STATE: (contract.topic_queue_state(SITE, "dat-dai"), {
        "field": "dat-dai", "waiting": 4, "priority_waiting": 1, "est_wait_s": 720,
        "last_called": "A015"}),
    Kind.TODAY: (contract.topic_today(SITE), {
        "site": SITE, "day": "2026-11-23", "generated_at": "2026-11-23T09:30:00+07:00",
        "tickets": {"issued": 40, "priority": 3, "waiting": 6, "at_counter": 2, "served": 29,
                    "no_show": 3, "called": 34, "within_target": 30, "within_target_pct": 88.2,
                    "avg_wait_s": 412.5, "p90_wait_s": 900.0, "avg_service_s": 380.0},
        "ratings": {"counted": 25, "by_level": {"very_satisfied": 18, "satisfied": 5, "unsatisfied": 2},
                    "satisfied": 23, "unsatisfied": 2, "satisfaction_pct": 92.0, "index": 82.0,
                    "flagged": 1, "flagged_by_reason": {"repeat": 1}},
        "dossiers": {"received": {"total": 12, "new": 10, "online": 4, "in_person": 6, "carried_over": 2},
                     "resolved": {"total": 5, "early": 1, "on_time": 3, "late": 1},
                     "open": {"total": 7, "within_time": 6, "overdue": 1}, "on_time_pct": 80.0},
        "grading_766": {"score_pct": 80.0, "late_pct": 20.0, "unsatisfied_pct": 0.0, "full_marks": False}}),
    Kind.CALL: (contract.topic_call(SITE), {
        "ticket": "A015", "counter": "quay-3", "at": "2026-11-23T09:30:00+07:00", "repeat": False}),
    Kind.ALERTS: (contract.topic_alerts(SITE), {"active": [ALERT], "updated_at": "2026-11-23T09:30:00+07:00"}),
    Kind.ALERT: (contract.topic_alert_event(SITE), {
        "event": "cleared", "alert": {**ALERT, "cleared_at": "2026-11-23T09:40:00+07:00"}}),
}


# (reason, topic, payload, receiver) — one concrete bad message per case.
REJECTS = [
    ("topic_not_ours", "zigbee2mqtt/bridge/state", b"online", "server"),
    ("topic_not_ours", "motcua/other-site/device/kiosk-01/status", b"online", "server"),
    ("unknown_topic", f"motcua/{SITE}/device/rating-03/event/coffee", rating(), "server"),
    ("unknown_topic", f"motcua/{SITE}/device/rating-03", rating(), "server"),
    ("wrong_direction", contract.topic_ticket_response(SITE, "kiosk-01"), b"{}", "server"),
    ("wrong_direction", contract.topic_config(SITE), b"{}", "server"),
    ("wrong_direction", RATING_TOPIC, rating(), "device"),
    ("bad_device_id", f"motcua/{SITE}/device/Kiosk_01/event/rating", rating(), "server"),
    ("bad_device_id", f"motcua/{SITE}/device/{'k' * 33}/status", b"online", "server"),
    ("bad_counter_id", RATING_TOPIC, rating(counter="Quầy 3"), "server"),
    ("bad_counter_id", contract.topic_counter_state(SITE, "quay-3"),
     json.dumps({"counter": "quay-4", "status": "idle"}).encode(), "device"),
    ("bad_field_id", REQUEST_TOPIC, request(field="Đất đai"), "server"),
    ("payload_too_large", PRINTER_TOPIC, printer(detail="x" * MAX_PAYLOAD_BYTES), "server"),
    ("empty_payload", RATING_TOPIC, b"", "server"),
    ("invalid_utf8", RATING_TOPIC, b'{"msg_id": "\xff\xfe"}', "server"),
    ("invalid_utf8", STATUS_TOPIC, b"onl\xc3ine", "server"),
    ("not_json", RATING_TOPIC, b"{msg_id: 1}", "server"),
    ("not_json", RATING_TOPIC, b"[" * 3000, "server"),
    ("nan_or_infinity", RATING_TOPIC, b'{"msg_id": "a", "weight": NaN}', "server"),
    ("nan_or_infinity", RATING_TOPIC, b'{"msg_id": "a", "weight": -Infinity}', "server"),
    ("nan_or_infinity", RATING_TOPIC, b'{"msg_id": "a", "weight": 1e999}', "server"),
    ("duplicate_keys", RATING_TOPIC, b'{"msg_id": "a", "level": "satisfied", "level": "unsatisfied"}', "server"),
    ("not_object", RATING_TOPIC, b'["very_satisfied"]', "server"),
    ("not_object", RATING_TOPIC, b'"very_satisfied"', "server"),
    ("missing_field", RATING_TOPIC, rating(msg_id=...), "server"),
    ("missing_field", RATING_TOPIC, rating(level=None), "server"),
    ("wrong_type", RATING_TOPIC, rating(msg_id=42), "server"),
    ("wrong_type", RATING_TOPIC, rating(at=1795400000), "server"),
    ("wrong_type", KEYPAD_TOPIC, keypad(action=1), "server"),
    ("string_too_long", PRINTER_TOPIC, printer(detail="Kẹt giấy " * 40), "server"),
    ("bad_msg_id", RATING_TOPIC, rating(msg_id="rating 03"), "server"),
    ("bad_msg_id", RATING_TOPIC, rating(msg_id="x" * 129), "server"),
    ("bad_level", RATING_TOPIC, rating(level="Rất hài lòng"), "server"),
    ("bad_ticket", RATING_TOPIC, rating(ticket="A 015"), "server"),
    ("bad_time", RATING_TOPIC, rating(at="23/11/2026 09:29"), "server"),
    ("bad_time", RATING_TOPIC, rating(at="2026-11-23T09:29:58"), "server"),
    ("time_out_of_range", RATING_TOPIC, rating(at="2026-11-25T09:30:00+07:00"), "server"),
    ("time_out_of_range", RATING_TOPIC, rating(at="2026-10-01T09:30:00+07:00"), "server"),
    ("reasons_not_list", RATING_TOPIC, rating(reasons="slow"), "server"),
    ("too_many_reasons", RATING_TOPIC, rating(reasons=[f"r{i}" for i in range(9)]), "server"),
    ("bad_reason", RATING_TOPIC, rating(reasons=["Thái độ không tốt"]), "server"),
    ("bad_action", KEYPAD_TOPIC, keypad(action="skip"), "server"),
    ("bad_state", PRINTER_TOPIC, printer(state="on_fire"), "server"),
    ("bad_transaction", REQUEST_TOPIC, request(transaction=""), "server"),
    ("bad_transaction", REQUEST_TOPIC, request(transaction="has space"), "server"),
    ("bad_priority", REQUEST_TOPIC, request(priority="Người cao tuổi"), "server"),
    ("bad_lang", REQUEST_TOPIC, request(lang="fr"), "server"),
    ("bad_status", STATUS_TOPIC, b"stopped", "server"),
    ("bad_status", STATUS_TOPIC, b"ONLINE", "server"),
    ("bad_response", contract.topic_ticket_response(SITE, "kiosk-01"),
     b'{"transaction": "t-1", "status": "ok"}', "device"),
    ("bad_value", contract.topic_queue_state(SITE, "dat-dai"),
     json.dumps({"field": "dat-dai", "waiting": -1, "priority_waiting": 0, "est_wait_s": 0}).encode(),
     "device"),
]


def receive(receiver: str, topic: str, payload: bytes):
    if receiver == "server":
        return parse_inbound(SITE, topic, payload, now=NOW)
    return parse_from_server(SITE, topic, payload, now=NOW)


@pytest.mark.parametrize("reason, topic, payload, receiver", REJECTS,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(REJECTS)])
def test_bad_message_is_rejected_with_its_reason(reason, topic, payload, receiver) -> None:
    with pytest.raises(PayloadRejected) as rejected:
        receive(receiver, topic, payload)
    assert rejected.value.reason == reason, rejected.value.detail
    assert rejected.value.detail


def test_every_reject_reason_has_a_case() -> None:
    assert {case[0] for case in REJECTS} == set(REJECT_REASONS)
    assert len(REJECT_REASONS) >= 20


def test_unregistered_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unregistered"):
        PayloadRejected("something_new", "")


@pytest.mark.parametrize("topic, payload, kind", [
    (RATING_TOPIC, rating(), Kind.RATING),
    (RATING_TOPIC, rating(ticket="A015", reasons=["slow", "rude"], level="unsatisfied",
                          at="2026-11-23T02:29:58Z"), Kind.RATING),
    (KEYPAD_TOPIC, keypad(action="no_show"), Kind.KEYPAD),
    (PRINTER_TOPIC, printer(state="error", detail="Kẹt giấy"), Kind.PRINTER),
    (REQUEST_TOPIC, request(priority="elderly", lang="vi"), Kind.TICKET_REQUEST),
])
def test_valid_device_messages_parse(topic, payload, kind) -> None:
    inbound = parse_inbound(SITE, topic, payload, now=NOW)
    assert inbound.kind is kind
    assert inbound.topic == topic
    assert inbound.device_id == topic.split("/")[3]
    assert isinstance(inbound.message, TOPICS[kind].payload)


def test_rating_fields_are_typed() -> None:
    message = parse_inbound(SITE, RATING_TOPIC, rating(ticket="A015", reasons=["slow"]), now=NOW).message
    assert message == RatingEvent(msg_id="rating-03:7:42", counter="quay-3", level="very_satisfied",
                                  ticket="A015", reasons=["slow"],
                                  at=datetime(2026, 11, 23, 9, 29, 58, tzinfo=ICT))


@pytest.mark.parametrize("kind", list(VALID_SERVER_PAYLOADS))
def test_valid_server_messages_parse_and_roundtrip(kind: Kind) -> None:
    topic, body = VALID_SERVER_PAYLOADS[kind]
    inbound = parse_from_server(SITE, topic, json.dumps(body, ensure_ascii=False).encode())
    assert inbound.kind is kind
    again = parse_from_server(SITE, topic, encode(inbound.message))
    assert again.message == inbound.message


def test_every_payload_topic_has_a_valid_example_here() -> None:
    device_kinds = {Kind.RATING, Kind.KEYPAD, Kind.PRINTER, Kind.TICKET_REQUEST}
    payload_kinds = {kind for kind, definition in TOPICS.items() if definition.payload}
    assert payload_kinds == device_kinds | set(VALID_SERVER_PAYLOADS)


def test_stats_today_of_the_server_is_a_valid_state_today(service) -> None:
    """state/today carries GET /api/v1/stats/today as it is; the two must not drift apart."""
    figures = service.stats_today()
    inbound = parse_from_server(figures["site"], contract.topic_today(figures["site"]),
                                json.dumps(figures, ensure_ascii=False).encode())
    assert inbound.message.day.isoformat() == figures["day"]


def test_unknown_fields_are_ignored() -> None:
    payload = rating(firmware="1.4.2", battery_pct=87, extra={"nested": [1, 2]})
    message = parse_inbound(SITE, RATING_TOPIC, payload, now=NOW).message
    assert message == parse_inbound(SITE, RATING_TOPIC, rating(), now=NOW).message
    assert "firmware" not in encode(message).decode()


@pytest.mark.parametrize("topic, payload, expected", [
    (STATUS_TOPIC, b"online", Status.ONLINE),
    (STATUS_TOPIC, b"offline", Status.OFFLINE),
])
def test_device_status_words(topic, payload, expected) -> None:
    assert parse_inbound(SITE, topic, payload, now=NOW).message is expected


def test_server_status_may_say_stopped() -> None:
    topic = contract.topic_server_status(SITE)
    assert parse_from_server(SITE, topic, b"stopped").message is Status.STOPPED
    assert encode(Status.STOPPED) == b"stopped"


def test_empty_payload_on_a_retained_topic_means_cleared() -> None:
    inbound = parse_inbound(SITE, STATUS_TOPIC, b"", now=NOW)
    assert inbound.cleared and inbound.device_id == "kiosk-01"
    assert parse_from_server(SITE, contract.topic_counter_state(SITE, "quay-9"), b"").cleared


def test_encode_is_compact_utf8_without_nulls() -> None:
    call = CallEvent(ticket="A015", counter="quay-3", at=NOW, repeat=True)
    assert encode(call) == b'{"ticket":"A015","counter":"quay-3","at":"2026-11-23T09:30:00+07:00","repeat":true}'
    error = TicketResponse(transaction="t-1", status="error",
                           error={"code": "closed", "message": "Ngoài giờ làm việc"})
    assert "Ngoài giờ".encode() in encode(error)


def test_time_window_is_relative_to_now() -> None:
    late_replay = rating(at="2026-10-25T09:30:00+07:00")  # 29 days old: a terminal's backlog
    assert parse_inbound(SITE, RATING_TOPIC, late_replay, now=NOW).message.at.day == 25
    with pytest.raises(ValueError, match="aware"):
        parse_inbound(SITE, RATING_TOPIC, rating(), now=datetime(2026, 11, 23, 9, 30))


def test_builders_produce_the_documented_patterns() -> None:
    built = {
        Kind.SERVER_STATUS: contract.topic_server_status(SITE),
        Kind.DEVICE_STATUS: contract.topic_device_status(SITE, "d1"),
        Kind.RATING: contract.topic_rating(SITE, "d1"),
        Kind.KEYPAD: contract.topic_keypad(SITE, "d1"),
        Kind.PRINTER: contract.topic_printer(SITE, "d1"),
        Kind.TICKET_REQUEST: contract.topic_ticket_request(SITE, "d1"),
        Kind.TICKET_RESPONSE: contract.topic_ticket_response(SITE, "d1"),
        Kind.CONFIG: contract.topic_config(SITE),
        Kind.COUNTER_STATE: contract.topic_counter_state(SITE, "d1"),
        Kind.QUEUE_STATE: contract.topic_queue_state(SITE, "d1"),
        Kind.TODAY: contract.topic_today(SITE),
        Kind.CALL: contract.topic_call(SITE),
        Kind.ALERTS: contract.topic_alerts(SITE),
        Kind.ALERT: contract.topic_alert_event(SITE),
    }
    assert set(built) == set(TOPICS)
    for kind, topic in built.items():
        pattern = TOPICS[kind].full_pattern.format(site=SITE, device="d1", counter="d1", field="d1")
        assert topic == pattern
        definition, ids = contract.match_topic(SITE, topic)
        assert definition.kind is kind
        assert set(ids.values()) <= {"d1"}


@pytest.mark.parametrize("bad", ["", "Kiosk", "kiosk 1", "-kiosk", "k" * 33, "a/b", "+", "#"])
def test_builders_refuse_bad_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        contract.topic_rating(SITE, bad)
    with pytest.raises(ValueError):
        contract.topic_config(bad)


def test_topic_properties_follow_the_protocol() -> None:
    for definition in TOPICS.values():
        assert definition.qos == 1
        is_state = definition.pattern.startswith("state/") or definition.pattern.endswith("status")
        assert definition.retained is is_state, definition.pattern
    assert TOPICS[Kind.TICKET_RESPONSE].direction is Direction.FROM_SERVER
    assert TOPICS[Kind.DEVICE_STATUS].direction is Direction.FROM_DEVICE


def _matches(filter_: str, topic: str) -> bool:
    """MQTT filter matching, to check the subscription lists without a broker."""
    f_parts, t_parts = filter_.split("/"), topic.split("/")
    for i, part in enumerate(f_parts):
        if part == "#":
            return True
        if i >= len(t_parts) or (part != "+" and part != t_parts[i]):
            return False
    return len(f_parts) == len(t_parts)


def test_server_subscriptions_cover_every_device_topic_and_nothing_the_server_sends() -> None:
    filters = [f for f, qos in contract.server_subscriptions(SITE)]
    for definition in TOPICS.values():
        ids = {name: "x1" for name in definition.placeholders}
        topic = definition.topic(SITE, **ids)
        heard = any(_matches(f, topic) for f in filters)
        assert heard is (definition.direction is Direction.FROM_DEVICE), definition.pattern
    assert _matches(filters[1], f"motcua/{SITE}/device/x1/event/coffee")  # counted as unknown_topic


def _heard(filters: list[tuple[str, int]]) -> set[str]:
    """Which of a set of sample topics (two of each id) the filters match."""
    assert all(qos == contract.QOS for _, qos in filters)
    samples = {definition.topic(SITE, **{name: value for name in definition.placeholders})
               for definition in TOPICS.values() for value in ("x1", "x2")}
    return {topic for topic in samples if any(_matches(f, topic) for f, _ in filters)}


def test_a_ticket_kiosk_hears_its_answers_the_config_queues_and_status_only() -> None:
    heard = _heard(contract.ticket_kiosk_subscriptions(SITE, "x1"))
    assert heard == {contract.topic_ticket_response(SITE, "x1"), contract.topic_config(SITE),
                     contract.topic_queue_state(SITE, "x1"), contract.topic_queue_state(SITE, "x2"),
                     contract.topic_server_status(SITE)}


def test_a_rating_terminal_and_a_button_box_hear_their_own_counter_only() -> None:
    assert _heard(contract.rating_terminal_subscriptions(SITE, "x1")) == {
        contract.topic_config(SITE), contract.topic_counter_state(SITE, "x1"), contract.topic_server_status(SITE)}
    assert _heard(contract.button_box_subscriptions(SITE, "x1")) == {contract.topic_counter_state(SITE, "x1")}
    with pytest.raises(ValueError):
        contract.rating_terminal_subscriptions(SITE, "Quầy 1")  # not an id: never a malformed filter


def test_a_board_hears_all_state_calls_and_status_and_no_device_or_answer() -> None:
    heard = _heard(contract.display_subscriptions(SITE))
    for kind in (Kind.CONFIG, Kind.TODAY, Kind.ALERTS, Kind.CALL, Kind.SERVER_STATUS):
        assert TOPICS[kind].topic(SITE) in heard, kind
    for counter in ("x1", "x2"):
        assert {contract.topic_counter_state(SITE, counter), contract.topic_queue_state(SITE, counter)} <= heard
    assert not any(contract.match_topic(SITE, topic)[0].direction is Direction.FROM_DEVICE for topic in heard)
    assert contract.topic_ticket_response(SITE, "x1") not in heard


def test_docs_name_every_subscription_function() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text(encoding="utf-8")
    functions = [name for name in dir(contract) if name.endswith("_subscriptions")]
    assert len(functions) >= 5
    for name in functions:
        assert f"`{name}`" in doc, f"docs/mqtt.md does not name contract.{name}"
