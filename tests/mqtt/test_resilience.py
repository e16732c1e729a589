"""The MQTT issue's "done when": real brokers, a real SQLite file, crashes in the middle of streams.

1. A big stream of rating events with repeats mixed in: each press counted exactly once.
2. `motcua serve` killed with SIGKILL mid-stream and started again: nothing lost, nothing twice
   (events published while it is down wait in Mosquitto for its persistent session).
3. The same when the broker restarts mid-stream (the terminal's client republishes what was unacked).
4. 1,000 malformed payloads of 45 kinds: every one rejected with its reason, figures unchanged,
   the server still answering.
5. A ticket request repeated with the same transaction, across a server restart: one ticket.
6. 1, 4 and 5 on the amqtt fallback broker too (MQTT 3.1.1, smaller sizes).

Nothing sleeps for a fixed time: every wait polls the SQLite file (or an inbox) until a
condition holds and fails with what it was waiting for.
"""
from __future__ import annotations

import itertools
import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from queue_server.domain.counters import Action
from queue_server.domain.tickets import Ticket
from queue_server.domain.timeutil import FixedClock
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.client import MQTTv5, MqttClient, subscribe_and_wait
from queue_server.server import build
from tests.conftest import MONDAY_9AM

from .conftest import WAIT_S, BrokerUnderTest, Inbox, Received, connected, needs_mosquitto
from .helpers import (
    Database,
    ServerProcess,
    add_served_tickets,
    check_exactly_once,
    database,
    linked_server,
    publish_all,
    rating,
    site_config,
    site_data,
    wait_until,
    write_site_toml,
)

SITE = "hcc-test"
LEVELS = ("very_satisfied", "satisfied", "unsatisfied")
STREAM_SIZES = {"mosquitto": 10_000, "amqtt": 2_000}
INGEST_TIMEOUT_S = 120.0  # a deadline, not an expectation: ~1,000 presses/s on a small box


# --------------------------------------------------------------------------- helpers


def dumps(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def responses(got: list[Received], site: str, device: str) -> list[dict]:
    topic = contract.topic_ticket_response(site, device)
    return [json.loads(m.payload) for m in got if m.topic == topic]


def answers(inbox: Inbox, site: str, device: str, transaction: str) -> list[dict]:
    return [r for r in responses(inbox.messages, site, device) if r["transaction"] == transaction]


def wait_answers(inbox: Inbox, site: str, device: str, transaction: str, count: int,
                 timeout: float = WAIT_S) -> list[dict]:
    inbox.wait_for(lambda got: sum(1 for r in responses(got, site, device)
                                   if r["transaction"] == transaction) >= count, timeout)
    return answers(inbox, site, device, transaction)


def request_ticket(client: MqttClient, inbox: Inbox, transaction: str, *, site: str = SITE,
                   device: str = "kiosk-1", field: str = "dat-dai", timeout: float = WAIT_S) -> dict:
    """Publish a request and wait for the next response echoing its transaction."""
    already = len(answers(inbox, site, device, transaction))
    client.publish(contract.topic_ticket_request(site, device),
                   dumps({"transaction": transaction, "field": field}), qos=1).wait_for_publish(timeout)
    return wait_answers(inbox, site, device, transaction, already + 1, timeout)[already]


def kiosk(clients: Callable[..., MqttClient], target, device: str = "kiosk-1",
          site: str = SITE) -> tuple[MqttClient, Inbox]:
    inbox = Inbox()
    client = connected(clients, target, device, inbox=inbox)
    subscribe_and_wait(client, [(contract.topic_ticket_response(site, device), 1)], timeout=WAIT_S)
    return client, inbox


@dataclass
class Stream:
    """Rating events for served tickets, as one terminal sends them."""

    device: str
    site: str
    messages: list[tuple[str, bytes]]  # (topic, payload) in sending order
    distinct: set[str]  # msg_ids
    repeats: int  # messages whose msg_id was sent before (or after) too

    @property
    def topic(self) -> str:
        return contract.topic_rating(self.site, self.device)


def rating_stream(device: str, tickets: list[Ticket], rng: random.Random, *, site: str = SITE,
                  repeat_share: float = 0.10, second_press_share: float = 0.0) -> Stream:
    """One press per ticket; `repeat_share` of them sent again with the same msg_id (QoS 1
    redelivery, a device retry), `second_press_share` pressed again with a new msg_id (a second
    press on the same ticket: stored but not counted); all shuffled together."""
    topic = contract.topic_rating(site, device)
    events = [rating(f"{device}:1:{n}", ticket, ticket.finished_at + timedelta(seconds=20), LEVELS[n % 3])
              for n, ticket in enumerate(tickets)]
    repeats = rng.sample(events, int(len(events) * repeat_share))
    second = [{**event, "msg_id": event["msg_id"] + ":2", "level": "unsatisfied"}
              for event in rng.sample(events, int(len(events) * second_press_share))]
    mixed = events + repeats + second
    rng.shuffle(mixed)
    return Stream(device, site, [(topic, dumps(e)) for e in mixed], {e["msg_id"] for e in events + second},
                  len(repeats))


def fence(stream: Stream, counter: str, at: datetime) -> tuple[str, bytes]:
    """An unnamed press on a counter with nothing to rate: stored (flagged, not counted). Sent
    last, its row proves that the terminal's earlier messages were all handled (one session
    delivers in order)."""
    msg_id = f"{stream.device}:fence"
    stream.distinct.add(msg_id)
    return stream.topic, dumps({"msg_id": msg_id, "counter": counter, "level": "satisfied", "at": at.isoformat()})


def interleave(*lists: list) -> list:
    return [item for group in itertools.zip_longest(*lists) for item in group if item is not None]


def figures_without_time(figures: dict) -> dict:
    return {key: value for key, value in figures.items() if key != "generated_at"}


# --------------------------------------------------------------------------- 1. a big stream with repeats


@pytest.mark.slow
def test_rating_stream_with_repeats_counts_every_press_exactly_once(
        any_broker: BrokerUnderTest, clients, tmp_path: Path) -> None:
    size = STREAM_SIZES[any_broker.broker.name]
    data_dir = tmp_path / "data"
    rng = random.Random(20261123)
    with linked_server(site_config(counters=50), data_dir, FixedClock(MONDAY_9AM), any_broker.host,
                       any_broker.port, any_broker.protocol) as (server, link), database(data_dir) as db:
        tickets = add_served_tickets(server, size, finished_at=MONDAY_9AM - timedelta(minutes=20))
        streams = [rating_stream(device, tickets[half::2], rng, second_press_share=0.02)
                   for half, device in enumerate(("term-1", "term-2"))]
        terminals = [connected(clients, any_broker, s.device) for s in streams]
        fences = [fence(s, "quay-1", MONDAY_9AM) for s in streams]

        # The two terminals' presses interleaved, each terminal's fence last.
        infos = [terminal.publish(topic, payload, qos=1) for terminal, (topic, payload) in
                 interleave(*[[(terminals[k], m) for m in s.messages] for k, s in enumerate(streams)])]
        infos += [terminal.publish(topic, payload, qos=1) for terminal, (topic, payload) in zip(terminals, fences)]

        db.wait_for("both fences (every press handled)",
                    lambda d: [d.has_msg_id(f"{s.device}:fence") for s in streams], all,
                    timeout=INGEST_TIMEOUT_S)
        wait_until("PUBACKs of every press", lambda: sum(not i.is_published() for i in infos),
                   lambda left: left == 0, WAIT_S)

        published = set().union(*(s.distinct for s in streams))
        assert len(infos) == len(published) + sum(s.repeats for s in streams)
        assert [s.repeats for s in streams] == [size // 20, size // 20]  # 10 % of each terminal's presses
        check_exactly_once(db, published, tickets=size)
        figures = server.service.stats_today()["ratings"]
        assert figures["counted"] == size
        assert sum(figures["by_level"].values()) == size
        second_presses = len(published) - size - len(streams)
        assert figures["flagged"] == second_presses + len(streams)
        assert figures["flagged_by_reason"] == {"already_rated": second_presses,
                                                "nothing_to_rate": len(streams)}
        assert link.status() == "connected"


# --------------------------------------------------------------------------- 2. the server killed mid-stream


def status_count(inbox: Inbox, payload: bytes) -> int:
    return sum(1 for m in inbox.messages if m.payload == payload)


def wait_status(inbox: Inbox, payload: bytes, count: int, process: ServerProcess | None = None,
                timeout: float = 30.0) -> None:
    """Until server/status has carried `payload` `count` times (failing early if the server died)."""
    def probe() -> int:
        if process is not None and not process.running():
            raise AssertionError(f"motcua serve exited ({process.process.returncode}):\n{process.log()[-3000:]}")
        return status_count(inbox, payload)
    wait_until(f"server/status {payload!r} #{count}", probe, lambda n: n >= count, timeout)


@needs_mosquitto
@pytest.mark.slow
def test_server_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
        mosquitto: MosquittoBroker, clients, tmp_path: Path) -> None:
    site, size = "hcc-kill", 3_000
    data = site_data(site=site, counters=50)
    data_dir = tmp_path / "site-data"
    # The served tickets, written with the real clock (the child uses it too), then the file closed.
    prepared = build(site_config(site=site, counters=50), data_dir)
    try:
        tickets = add_served_tickets(prepared, size, finished_at=prepared.service.now())
    finally:
        prepared.store.close()
    config_path = write_site_toml(tmp_path / "site.toml", data, data_dir=data_dir, http_port=free_port(),
                                  mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    stream = rating_stream("term-1", tickets, random.Random(7), site=site, repeat_share=0.05)
    part_a, part_b, part_c = stream.messages[:2_000], stream.messages[2_000:2_800], stream.messages[2_800:]
    status = Inbox()
    watcher = connected(clients, mosquitto, "watcher", inbox=status)
    subscribe_and_wait(watcher, [(contract.topic_server_status(site), 1)], timeout=WAIT_S)
    kiosk_client, kiosk_inbox = kiosk(clients, mosquitto, site=site)
    terminal = connected(clients, mosquitto, "term-1")
    server = ServerProcess(config_path, tmp_path / "server.log")
    try:
        with database(data_dir) as db:
            server.start()
            wait_status(status, b"online", 1, server)
            before = request_ticket(kiosk_client, kiosk_inbox, "kiosk-1:tx-1", site=site)
            assert before["status"] == "ok"

            # Part A; SIGKILL while the server is working through it.
            infos = publish_all(terminal, part_a)
            db.wait_for("the server to be part-way through the stream", Database.rating_rows,
                        lambda rows: rows >= 200)
            server.kill()
            at_kill = db.rating_rows()
            in_part_a = {json.loads(p)["msg_id"] for _, p in part_a}
            assert at_kill < len(in_part_a), "the kill came after part A was handled: not mid-stream"
            wait_status(status, b"offline", 1)  # the Last Will: the broker saw the crash

            # Part B and a ticket request while the server is down: the broker acknowledges them and
            # queues them for the server's persistent session (motcua-server-hcc-kill).
            infos += publish_all(terminal, part_b)
            kiosk_client.publish(contract.topic_ticket_request(site, "kiosk-1"),
                                 dumps({"transaction": "kiosk-1:tx-2", "field": "ho-tich"}),
                                 qos=1).wait_for_publish(WAIT_S)
            assert db.rating_rows() == at_kill  # nobody is handling them

            server.start()
            wait_status(status, b"online", 2, server)
            infos += publish_all(terminal, part_c + [fence(stream, "quay-1", prepared.service.now())])
            db.wait_for("the fence after the restart", lambda d: d.has_msg_id("term-1:fence"), bool,
                        timeout=INGEST_TIMEOUT_S)

            check_exactly_once(db, stream.distinct, tickets=size)
            assert len(infos) == len(stream.messages) + 1
            # What was published while the server was dead reached it from the broker's queue.
            in_part_b = {json.loads(p)["msg_id"] for _, p in part_b}
            assert in_part_b <= db.msg_ids()
            queued = wait_answers(kiosk_inbox, site, "kiosk-1", "kiosk-1:tx-2", 1)
            assert queued[0]["status"] == "ok" and queued[0]["data"]["field"] == "ho-tich"
            # The same transaction after the crash: the same ticket, never a second one.
            again = request_ticket(kiosk_client, kiosk_inbox, "kiosk-1:tx-1", site=site)
            assert again["data"]["ticket_id"] == before["data"]["ticket_id"]
            again_2 = request_ticket(kiosk_client, kiosk_inbox, "kiosk-1:tx-2", site=site, field="ho-tich")
            assert again_2["data"]["ticket_id"] == queued[0]["data"]["ticket_id"]
            assert db.scalar("SELECT COUNT(*) FROM tickets") == size + 2
        log = server.log()
        assert "MQTT connected (session present: False)" in log
        assert "MQTT connected (session present: True)" in log, log[-3000:]
        assert server.terminate() == 0
        wait_status(status, b"stopped", 1)
    finally:
        server.kill()


# --------------------------------------------------------------------------- 3. the broker restarts mid-stream


@needs_mosquitto
def test_broker_restart_mid_stream_loses_nothing_and_counts_nothing_twice(
        mosquitto: MosquittoBroker, clients, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    size = 3_000
    data_dir = tmp_path / "data"
    caplog.set_level(logging.INFO, logger="queue_server.mqtt.link")
    with linked_server(site_config(counters=20), data_dir, FixedClock(MONDAY_9AM), mosquitto.host,
                       mosquitto.port, MQTTv5) as (server, link), database(data_dir) as db:
        tickets = add_served_tickets(server, size, finished_at=MONDAY_9AM - timedelta(minutes=20))
        stream = rating_stream("term-1", tickets, random.Random(11), repeat_share=0.05)
        half = len(stream.messages) // 2
        # A terminal with a persistent session: paho keeps every unacknowledged QoS 1 press and
        # sends it again (DUP) after reconnecting.
        terminal = connected(clients, mosquitto, "term-1", clean_start=False)
        infos = [terminal.publish(topic, payload, qos=1) for topic, payload in stream.messages[:half]]
        db.wait_for("the server to be part-way through the stream", Database.rating_rows,
                    lambda rows: rows >= 200)
        # The second half goes out while the broker stops (SIGTERM: it saves sessions and queues).
        infos += [terminal.publish(topic, payload, qos=1) for topic, payload in stream.messages[half:]]
        mosquitto.restart()
        at_restart = db.rating_rows()

        wait_until("the server link and the terminal to reconnect",
                   lambda: (link.status(), terminal.is_connected()),
                   lambda state: state == ("connected", True), 30.0)
        wait_until("PUBACKs of every press", lambda: sum(not i.is_published() for i in infos),
                   lambda left: left == 0, 60.0)
        last = fence(stream, "quay-1", MONDAY_9AM)
        terminal.publish(*last, qos=1).wait_for_publish(WAIT_S)
        db.wait_for("the fence after the restart", lambda d: d.has_msg_id("term-1:fence"), bool,
                    timeout=INGEST_TIMEOUT_S)

        assert at_restart < len(stream.distinct) - 1, "the restart came after the stream was handled"
        check_exactly_once(db, stream.distinct, tickets=size)
        assert server.service.stats_today()["ratings"]["counted"] == size
        # The server's session outlived the broker restart (Mosquitto saved it on SIGTERM).
        connects = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MQTT connected")]
        assert connects == ["MQTT connected (session present: False)", "MQTT connected (session present: True)"]


# --------------------------------------------------------------------------- 4. malformed payloads


AT = MONDAY_9AM.isoformat()
RATING = contract.topic_rating(SITE, "term-1")
KEYPAD = contract.topic_keypad(SITE, "keypad-1")
PRINTER = contract.topic_printer(SITE, "kiosk-1")
REQUEST = contract.topic_ticket_request(SITE, "kiosk-1")
DEVICE_STATUS = contract.topic_device_status(SITE, "term-1")
_ABSENT = object()


def press(n: int, **changes: object) -> bytes:
    """A rating event that would be valid, with `changes` (a value of _ABSENT removes the key)."""
    event = {"msg_id": f"bad:{n}", "counter": "quay-1", "level": "satisfied", "at": AT} | changes
    return dumps({k: v for k, v in event.items() if v is not _ABSENT})


def raw_press(n: int, extra: str) -> bytes:
    """A rating event as hand-written JSON text, `extra` spliced in before the closing brace."""
    return (f'{{"msg_id": "bad:{n}", "counter": "quay-1", "level": "satisfied", "at": "{AT}", '
            f'{extra}}}').encode()


@dataclass(frozen=True)
class Bad:
    kind: str
    topic: str
    payload: Callable[[int], bytes]
    reason: str  # what the rejects table must say


MALFORMED: list[Bad] = [
    # topic
    Bad("unknown event kind", f"motcua/{SITE}/device/term-1/event/coffee", lambda n: press(n), "unknown_topic"),
    Bad("unknown request kind", f"motcua/{SITE}/device/kiosk-1/request/refund",
        lambda n: dumps({"transaction": f"t{n}", "field": "dat-dai"}), "unknown_topic"),
    Bad("device id not an id", f"motcua/{SITE}/device/Term_1/event/rating", lambda n: press(n), "bad_device_id"),
    # size and encoding
    Bad("oversize", RATING, lambda n: press(n, pad="x" * 5000), "payload_too_large"),
    Bad("empty event", RATING, lambda n: b"", "empty_payload"),
    Bad("invalid UTF-8", RATING, lambda n: b'{"msg_id": "\xff\xfe", "counter": "quay-1"}', "invalid_utf8"),
    # JSON
    Bad("not JSON", RATING, lambda n: "đây không phải JSON".encode(), "not_json"),
    Bad("truncated JSON", RATING, lambda n: press(n)[:-7], "not_json"),
    Bad("nested too deep", RATING, lambda n: b"[" * 4000, "not_json"),
    Bad("NaN", RATING, lambda n: raw_press(n, '"score": NaN'), "nan_or_infinity"),
    Bad("-Infinity", RATING, lambda n: raw_press(n, '"score": -Infinity'), "nan_or_infinity"),
    Bad("1e999", RATING, lambda n: raw_press(n, '"score": 1e999'), "nan_or_infinity"),
    Bad("duplicate keys", RATING, lambda n: raw_press(n, '"level": "unsatisfied"'), "duplicate_keys"),
    Bad("array", RATING, lambda n: b"[1, 2, 3]", "not_object"),
    Bad("bare string", RATING, lambda n: b'"very_satisfied"', "not_object"),
    # rating fields
    Bad("no msg_id", RATING, lambda n: press(n, msg_id=_ABSENT), "missing_field"),
    Bad("null level", RATING, lambda n: press(n, level=None), "missing_field"),
    Bad("msg_id a number", RATING, lambda n: press(n, msg_id=n), "wrong_type"),
    Bad("level a number", RATING, lambda n: press(n, level=1), "wrong_type"),
    Bad("msg_id with a space", RATING, lambda n: press(n, msg_id=f"bad {n}"), "bad_msg_id"),
    Bad("msg_id too long", RATING, lambda n: press(n, msg_id=f"{n}:" + "x" * 128), "bad_msg_id"),
    Bad("counter not an id", RATING, lambda n: press(n, counter="Quầy 1"), "bad_counter_id"),
    Bad("level not a key", RATING, lambda n: press(n, level="Rất hài lòng"), "bad_level"),
    Bad("ticket not a reference", RATING, lambda n: press(n, ticket="A 015"), "bad_ticket"),
    Bad("time without offset", RATING, lambda n: press(n, at="2026-11-23T09:29:58"), "bad_time"),
    Bad("time not ISO", RATING, lambda n: press(n, at="23/11/2026 09:29"), "bad_time"),
    Bad("time a number", RATING, lambda n: press(n, at=1795400000), "wrong_type"),
    Bad("time two days ahead", RATING,
        lambda n: press(n, at=(MONDAY_9AM + timedelta(days=2)).isoformat()), "time_out_of_range"),
    Bad("time 31 days old", RATING,
        lambda n: press(n, at=(MONDAY_9AM - timedelta(days=31)).isoformat()), "time_out_of_range"),
    Bad("reasons a string", RATING, lambda n: press(n, reasons="slow"), "reasons_not_list"),
    Bad("nine reasons", RATING, lambda n: press(n, reasons=["slow"] * 9), "too_many_reasons"),
    Bad("reason not a key", RATING, lambda n: press(n, reasons=["Chậm!"]), "bad_reason"),
    Bad("unknown counter", RATING, lambda n: press(n, counter="quay-99"), "unknown_counter"),
    Bad("unknown level", RATING, lambda n: press(n, level="thrilled"), "unknown_level"),
    # keypad, printer, ticket request, device status
    Bad("keypad action", KEYPAD, lambda n: dumps({"msg_id": f"k:{n}", "counter": "quay-1", "action": "explode"}),
        "bad_action"),
    Bad("keypad unknown counter", KEYPAD,
        lambda n: dumps({"msg_id": f"k:{n}", "counter": "quay-99", "action": "next"}), "unknown_counter"),
    Bad("printer state", PRINTER, lambda n: dumps({"msg_id": f"p:{n}", "state": "on_fire"}), "bad_state"),
    Bad("printer detail too long", PRINTER,
        lambda n: dumps({"msg_id": f"p:{n}", "state": "error", "detail": "x" * 300}), "string_too_long"),
    Bad("transaction not ASCII", REQUEST, lambda n: dumps({"transaction": f"giao dịch {n}", "field": "dat-dai"}),
        "bad_transaction"),
    Bad("field not an id", REQUEST, lambda n: dumps({"transaction": f"t{n}", "field": "Đất đai"}), "bad_field_id"),
    Bad("unknown field", REQUEST, lambda n: dumps({"transaction": f"t{n}", "field": "no-such"}), "unknown_field"),
    Bad("priority not a key", REQUEST,
        lambda n: dumps({"transaction": f"t{n}", "field": "dat-dai", "priority": "VIP!"}), "bad_priority"),
    Bad("unknown priority", REQUEST,
        lambda n: dumps({"transaction": f"t{n}", "field": "dat-dai", "priority": "vip"}), "unknown_priority"),
    Bad("lang", REQUEST, lambda n: dumps({"transaction": f"t{n}", "field": "dat-dai", "lang": "fr"}), "bad_lang"),
    Bad("device status word", DEVICE_STATUS, lambda n: b"ONLINE", "bad_status"),
]
# Requests the service refuses are answered with an error as well as recorded.
ANSWERED_WITH_ERROR = {"unknown_field", "unknown_priority"}

# What a device may publish but the broker never routes to the server (it subscribes only to
# device/+/status, device/+/event/+ and device/+/request/+): no reject is recorded, nothing changes.
UNROUTED: list[tuple[str, bytes]] = [
    (contract.topic_today(SITE), b'{"tickets": "hacked"}'),  # wrong direction
    (contract.topic_ticket_response("hcc-test", "kiosk-9"), b'{"transaction": "x", "status": "ok"}'),
    (contract.topic_call(SITE), b'{"ticket": "A999", "counter": "quay-1"}'),
    ("motcua/hcc-other/device/term-1/event/rating", press(0)),  # another site
    (f"motcua/{SITE}/device/term-1/event/rating/extra", press(0)),  # one level too deep
]


def test_malformed_catalogue_matches_the_contract() -> None:
    """Every kind above gets its reason from parse_inbound already, or passes it and is refused by
    the service (unknown_counter, unknown_level, unknown_field, unknown_priority)."""
    assert len(MALFORMED) >= 20
    domain_reasons = {"unknown_counter", "unknown_level", "unknown_field", "unknown_priority"}
    for bad in MALFORMED:
        try:
            contract.parse_inbound(SITE, bad.topic, bad.payload(1), now=MONDAY_9AM)
        except contract.PayloadRejected as exc:
            assert exc.reason == bad.reason, bad.kind
        else:
            assert bad.reason in domain_reasons, bad.kind
    assert len({bad.reason for bad in MALFORMED}) >= 30


def test_a_thousand_malformed_payloads_are_rejected_with_their_reasons_and_change_nothing(
        any_broker: BrokerUnderTest, clients, tmp_path: Path) -> None:
    total = 1_000
    data_dir = tmp_path / "data"
    with linked_server(site_config(counters=3), data_dir, FixedClock(MONDAY_9AM), any_broker.host,
                       any_broker.port, any_broker.protocol) as (server, link), database(data_dir) as db:
        service = server.service
        # Some figures to keep: a counted rating, a counter awaiting its rating, one serving, one waiting.
        rated = add_served_tickets(server, 3, finished_at=MONDAY_9AM - timedelta(minutes=5))
        service.record_rating(rated[0].counter_id, "very_satisfied", ticket_id=rated[0].id, msg_id="ok:1")
        for _ in range(3):
            service.issue_ticket("dat-dai")
        service.counter_action("quay-1", Action.NEXT)
        service.counter_action("quay-1", Action.FINISH)
        service.counter_action("quay-2", Action.NEXT)
        kiosk_client, kiosk_inbox = kiosk(clients, any_broker)
        before = figures_without_time(service.stats_today())
        rows_before = db.rating_rows()
        assert service.counter_view("quay-1")["status"] == "rating"

        fuzzer = connected(clients, any_broker, "fuzzer")
        sent = [MALFORMED[n % len(MALFORMED)] for n in range(total)]
        expected = Counter(bad.reason for bad in sent)
        publish_all(fuzzer, [(topic, payload) for topic, payload in UNROUTED for _ in range(4)])
        publish_all(fuzzer, [(bad.topic, bad.payload(n)) for n, bad in enumerate(sent)])

        db.wait_for(f"{total} rejects", lambda d: sum(d.reject_counts().values()), lambda n: n >= total)
        after = figures_without_time(service.stats_today())
        assert after == before
        assert db.rating_rows() == rows_before
        assert service.counter_view("quay-1")["status"] == "rating"  # no bad press took its rating

        # Still alive: a valid request is answered, and it comes after everything sent before it.
        assert link.status() == "connected"
        answer = request_ticket(kiosk_client, kiosk_inbox, "kiosk-1:after")
        assert answer["status"] == "ok" and answer["data"]["code"] == "A007"

        assert db.reject_counts() == dict(expected)
        assert db.scalar("SELECT COUNT(*) FROM rejects WHERE source != 'mqtt'") == 0
        devices = dict(db.rows("SELECT where_, COUNT(DISTINCT COALESCE(device_id, '-')) FROM rejects "
                               "GROUP BY where_"))
        assert devices[f"motcua/{SITE}/device/Term_1/event/rating"] == 1  # recorded without a device id
        errors = [r for r in responses(kiosk_inbox.messages, SITE, "kiosk-1") if r["status"] == "error"]
        assert Counter(r["error"]["code"] for r in errors) == {
            reason: count for reason, count in expected.items() if reason in ANSWERED_WITH_ERROR}
        for error in errors:
            contract.parse_from_server(SITE, contract.topic_ticket_response(SITE, "kiosk-1"), dumps(error))


# --------------------------------------------------------------------------- 5. one ticket per transaction


def test_ticket_request_repeated_across_a_server_restart_yields_one_ticket(
        any_broker: BrokerUnderTest, clients, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = site_config(counters=3)
    kiosk_client, inbox = kiosk(clients, any_broker)

    def running():
        return linked_server(config, data_dir, FixedClock(MONDAY_9AM), any_broker.host, any_broker.port,
                             any_broker.protocol)

    with running() as (server, link):
        first = request_ticket(kiosk_client, inbox, "kiosk-1:tx-1")
        other = request_ticket(kiosk_client, inbox, "kiosk-1:tx-2", field="ho-tich")
        assert request_ticket(kiosk_client, inbox, "kiosk-1:tx-1")["data"] == first["data"]
    # The kiosk retries while the server is down: the broker keeps the request for the server.
    kiosk_client.publish(contract.topic_ticket_request(SITE, "kiosk-1"),
                         dumps({"transaction": "kiosk-1:tx-1", "field": "dat-dai"}), qos=1).wait_for_publish(WAIT_S)

    with running() as (server, link), database(data_dir) as db:
        retried = wait_answers(inbox, SITE, "kiosk-1", "kiosk-1:tx-1", 3)[2]
        again = request_ticket(kiosk_client, inbox, "kiosk-1:tx-1")
        for answer in (retried, again):
            assert answer["status"] == "ok"
            assert answer["data"]["ticket_id"] == first["data"]["ticket_id"]
            assert answer["data"]["code"] == "A001"
        assert request_ticket(kiosk_client, inbox, "kiosk-1:tx-2", field="ho-tich")["data"]["ticket_id"] == \
            other["data"]["ticket_id"]
        new = request_ticket(kiosk_client, inbox, "kiosk-1:tx-3")
        assert new["data"]["code"] == "A002"
        assert db.scalar("SELECT COUNT(*) FROM tickets") == 3
        assert db.scalar("SELECT COUNT(*) FROM idempotency") == 3
        assert db.reject_counts() == {}
