"""ServerLink against a real Mosquitto and a real SQLite server: requests, keypads, ratings, rejects."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queue_server.device_first import DeviceFirst
from queue_server.domain.counters import Action
from queue_server.domain.timeutil import FixedClock
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker
from queue_server.mqtt.client import MqttClient, subscribe_and_wait
from queue_server.mqtt.link import ServerLink
from queue_server.server import Server, build
from tests.conftest import MONDAY_9AM, make_config

from .conftest import WAIT_S, Inbox, Received, connected

SITE = "hcc-test"
DEVICE = "kiosk-01"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Server]:
    built = build(make_config(), tmp_path / "data", clock=FixedClock(MONDAY_9AM))
    yield built
    built.store.close()


@pytest.fixture
def link(app: Server, mosquitto: MosquittoBroker) -> Iterator[ServerLink]:
    server_link = ServerLink(app.service, mosquitto.host, mosquitto.port)
    server_link.start(timeout=WAIT_S)
    yield server_link
    server_link.stop()


@pytest.fixture
def device(clients: Callable[..., MqttClient], mosquitto: MosquittoBroker, link: ServerLink):
    """A device client that hears its own answers and everything a board hears (the counters'
    state, calls, today's figures), once the server is online."""
    inbox = Inbox()
    client = connected(clients, mosquitto, DEVICE, inbox=inbox)
    subscribe_and_wait(client, [(contract.topic_ticket_response(SITE, DEVICE), contract.QOS),
                                *contract.display_subscriptions(SITE)], timeout=WAIT_S)
    inbox.wait_for(lambda got: any(m.topic == contract.topic_server_status(SITE) and m.payload == b"online"
                                   for m in got))
    return client, inbox


def publish(client: MqttClient, topic: str, payload: bytes | str | dict) -> None:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)


def responses(got: list[Received]) -> list[dict]:
    topic = contract.topic_ticket_response(SITE, DEVICE)
    return [json.loads(m.payload) for m in got if m.topic == topic]


def request_ticket(client: MqttClient, inbox: Inbox, transaction: str, field: str = "dat-dai") -> dict:
    """Publish a request and wait for the next response echoing its transaction."""
    already = sum(1 for r in responses(inbox.messages) if r["transaction"] == transaction)
    publish(client, contract.topic_ticket_request(SITE, DEVICE), {"transaction": transaction, "field": field})
    got = inbox.wait_for(lambda got: sum(1 for r in responses(got) if r["transaction"] == transaction) > already)
    return [r for r in responses(got) if r["transaction"] == transaction][already]


def latest(inbox: Inbox, topic: str, predicate: Callable[[dict], bool]) -> dict:
    """Wait until the last message on `topic` satisfies `predicate`."""
    def ok(got: list[Received]) -> bool:
        on_topic = [m for m in got if m.topic == topic]
        return bool(on_topic) and predicate(json.loads(on_topic[-1].payload))
    got = inbox.wait_for(ok)
    return json.loads([m for m in got if m.topic == topic][-1].payload)


def test_ticket_request_gets_one_ticket_per_transaction(app: Server, device) -> None:
    client, inbox = device
    first = request_ticket(client, inbox, "tx-1")
    assert first["status"] == "ok"
    assert first["transaction"] == "tx-1"
    assert first["data"]["code"] == "A001"
    again = request_ticket(client, inbox, "tx-1")
    assert again["data"]["ticket_id"] == first["data"]["ticket_id"]
    assert app.store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 1
    contract.parse_from_server(SITE, contract.topic_ticket_response(SITE, DEVICE),
                               json.dumps(again).encode())


def test_keypad_next_and_finish_change_counter_and_announce(app: Server, device) -> None:
    client, inbox = device
    app.service.counter_action("quay-1", Action.OPEN, clerk_id="nguyen-van-an")
    ticket = request_ticket(client, inbox, "tx-1")["data"]
    keypad = contract.topic_keypad(SITE, "keypad-1")
    counter_topic = contract.topic_counter_state(SITE, "quay-1")

    publish(client, keypad, {"msg_id": "keypad-1:1:1", "counter": "quay-1", "action": "next"})
    serving = latest(inbox, counter_topic, lambda s: s["status"] == "serving")
    assert serving["ticket"] == ticket["code"]
    call = inbox.wait_for(lambda got: any(m.topic == contract.topic_call(SITE) for m in got))
    calls = [json.loads(m.payload) for m in call if m.topic == contract.topic_call(SITE)]
    assert calls[0]["ticket"] == ticket["code"] and calls[0]["counter"] == "quay-1"
    assert calls[0]["repeat"] is False

    publish(client, keypad, {"msg_id": "keypad-1:1:2", "counter": "quay-1", "action": "finish"})
    latest(inbox, counter_topic, lambda s: s["status"] == "rating")

    # A QoS 1 redelivery of the same press acts once: no second "next" calls anybody.
    publish(client, keypad, {"msg_id": "keypad-1:1:2", "counter": "quay-1", "action": "finish"})
    request_ticket(client, inbox, "tx-fence")  # handled after the redelivery (one session, in order)
    assert app.store.db.execute("SELECT COUNT(*) FROM seen_messages").fetchone()[0] == 2
    assert app.store.reject_counts() == {}
    assert app.service.counter_view("quay-1")["status"] == "rating"


def finished_ticket(app: Server, client: MqttClient, inbox: Inbox) -> dict:
    app.service.counter_action("quay-1", Action.OPEN, clerk_id="nguyen-van-an")
    ticket = request_ticket(client, inbox, "tx-rated")["data"]
    app.service.counter_action("quay-1", Action.NEXT)
    app.service.counter_action("quay-1", Action.FINISH)
    return ticket


def test_rating_counted_once_for_repeated_msg_id(app: Server, device) -> None:
    client, inbox = device
    ticket = finished_ticket(app, client, inbox)
    rating = {"msg_id": "term-1:1:1", "counter": "quay-1", "level": "very_satisfied",
              "ticket": ticket["ticket_id"], "at": MONDAY_9AM.isoformat()}
    for _ in range(3):
        publish(client, contract.topic_rating(SITE, "term-1"), rating)
    today = contract.topic_today(SITE)
    figures = latest(inbox, today, lambda t: t["ratings"]["counted"] == 1)
    assert figures["ratings"]["by_level"]["very_satisfied"] == 1
    request_ticket(client, inbox, "tx-fence")  # all three presses handled before this answer
    assert app.store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1
    assert app.service.stats_today()["ratings"]["counted"] == 1
    assert app.store.reject_counts() == {}


def test_a_press_waiting_for_the_database_makes_other_work_give_way_until_it_is_applied(app: Server, device) -> None:
    """The link counts each device message in as paho hands it over and out once its batch is
    applied; meanwhile the HTTP gate and the state publisher give way (queue_server/device_first.py)."""
    client, inbox = device
    ticket = finished_ticket(app, client, inbox)
    device_first = app.service.device_first
    assert device_first.waiting == 0
    rating = {"msg_id": "term-1:1:9", "counter": "quay-1", "level": "satisfied",
              "ticket": ticket["ticket_id"], "at": MONDAY_9AM.isoformat()}
    gave_way = threading.Event()
    with app.store.write():  # a clerk's write in progress: the ingest waits for it
        publish(client, contract.topic_rating(SITE, "term-1"), rating)
        deadline = time.monotonic() + WAIT_S
        while device_first.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert device_first.waiting == 1
        giving_way = threading.Thread(target=lambda: (device_first.give_way(), gave_way.set()), daemon=True)
        giving_way.start()
        assert not gave_way.wait(0.02)  # still waiting for the press (the bound is 50 ms)
    latest(inbox, contract.topic_today(SITE), lambda t: t["ratings"]["counted"] == 1)
    assert gave_way.wait(WAIT_S)
    assert device_first.waiting == 0 and device_first.gave_way >= 1


def test_the_state_publisher_gives_way_before_each_state_it_reads(app: Server, device, link: ServerLink,
                                                                  monkeypatch) -> None:
    client, inbox = device
    asked: list[int] = []

    class Recording(DeviceFirst):
        def give_way(self) -> float:
            asked.append(1)
            return super().give_way()

    monkeypatch.setattr(link, "_device_first", Recording())
    app.service.counter_action("quay-2", Action.OPEN, clerk_id="tran-thi-binh")
    latest(inbox, contract.topic_counter_state(SITE, "quay-2"), lambda state: bool(state.get("clerk")))
    assert asked  # a counter's state was read after the devices' messages, not before


def test_malformed_payloads_are_recorded_and_change_nothing(app: Server, device) -> None:
    client, inbox = device
    finished_ticket(app, client, inbox)
    before = app.service.stats_today()
    rating = contract.topic_rating(SITE, "term-1")
    good = {"msg_id": "m", "counter": "quay-1", "level": "satisfied", "at": MONDAY_9AM.isoformat()}
    publish(client, rating, b"this is not json")
    publish(client, rating, {**good, "msg_id": "m1", "level": "thrilled"})
    publish(client, rating, {**good, "msg_id": "m2", "counter": "quay-99"})
    publish(client, rating, b'{"pad": "' + b"x" * 5000 + b'"}')
    publish(client, rating, b'{"msg_id": "\xff\xfe"}')
    publish(client, contract.topic_keypad(SITE, "keypad-1"),
            {"msg_id": "k1", "counter": "quay-1", "action": "explode"})
    publish(client, contract.topic_ticket_request(SITE, DEVICE), {"transaction": "tx-bad", "field": "no-such"})

    after_response = request_ticket(client, inbox, "tx-after", field="ho-tich")  # the link still works
    assert after_response["status"] == "ok"

    error = next(r for r in responses(inbox.messages) if r["transaction"] == "tx-bad")
    assert error["status"] == "error" and error["error"]["code"]
    rejects = {r["reason"] for r in app.store.recent_rejects()}
    assert {"not_json", "payload_too_large", "invalid_utf8", "bad_action", "unknown_counter"} <= rejects
    assert len(app.store.recent_rejects()) == 7
    assert all(r["source"] == "mqtt" for r in app.store.recent_rejects())
    after = app.service.stats_today()
    assert after["ratings"] == before["ratings"]
    assert after["tickets"]["issued"] == before["tickets"]["issued"] + 1  # only the valid request


def test_late_subscriber_gets_retained_config_and_every_counter(
        app: Server, link: ServerLink, clients: Callable[..., MqttClient], mosquitto: MosquittoBroker) -> None:
    assert link.status() == "connected"
    # "Late": after the server has published every state once (today's figures may come a
    # moment after the rest, so wait until an early watcher has seen them).
    early = Inbox()
    watcher = connected(clients, mosquitto, "early-watcher", inbox=early)
    subscribe_and_wait(watcher, [(contract.topic_today(SITE), contract.QOS)], timeout=WAIT_S)
    early.wait_for(lambda got: any(m.topic == contract.topic_today(SITE) for m in got))
    link.wait_idle(WAIT_S)
    inbox = Inbox()
    board = connected(clients, mosquitto, "board-1", inbox=inbox)
    subscribe_and_wait(board, contract.display_subscriptions(SITE), timeout=WAIT_S)
    counters = {contract.topic_counter_state(SITE, c.id) for c in app.config.counters}
    wanted = counters | {contract.topic_config(SITE), contract.topic_today(SITE),
                         contract.topic_server_status(SITE)}
    # Retained copies of every state arrive on subscribing; a live update (not retained) may
    # also arrive meanwhile and is not what this test is about.
    got = [m for m in inbox.wait_for(lambda got: wanted <= {m.topic for m in got if m.retain}) if m.retain]
    for message in got:
        if message.topic != contract.topic_server_status(SITE):
            contract.parse_from_server(SITE, message.topic, message.payload)
    config = json.loads(next(m.payload for m in got if m.topic == contract.topic_config(SITE)))
    assert [c["id"] for c in config["counters"]] == ["quay-1", "quay-2", "quay-3"]


def test_stop_publishes_stopped(app: Server, mosquitto: MosquittoBroker,
                                clients: Callable[..., MqttClient]) -> None:
    server_link = ServerLink(app.service, mosquitto.host, mosquitto.port)
    server_link.start(timeout=WAIT_S)
    server_link.stop()
    assert server_link.status() == "disconnected"
    inbox = Inbox()
    watcher = connected(clients, mosquitto, "watcher", inbox=inbox)
    subscribe_and_wait(watcher, [(contract.topic_server_status(SITE), 1)], timeout=WAIT_S)
    inbox.wait_for_payloads(b"stopped")


def test_a_burst_of_tickets_reaches_the_kiosks_as_a_few_queue_states_ending_with_the_last(
        app: Server, device, link: ServerLink) -> None:
    client, inbox = device
    topic = contract.topic_queue_state(SITE, "dat-dai")
    latest(inbox, topic, lambda state: state["waiting"] == 0)
    before = sum(1 for m in inbox.messages if m.topic == topic)
    for _ in range(40):
        app.service.issue_ticket("dat-dai")
    assert latest(inbox, topic, lambda state: state["waiting"] == 40)["waiting"] == 40
    assert link.wait_idle()
    sent = [json.loads(m.payload)["waiting"] for m in inbox.messages if m.topic == topic][before:]
    # At most one per QUEUE_MIN_INTERVAL_S (0.25 s) however fast the tickets come, the last one final.
    assert len(sent) <= 10 and sent[-1] == 40 and sent == sorted(sent)
