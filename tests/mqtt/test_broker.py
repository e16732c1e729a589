"""The embedded brokers, driven by real paho clients: delivery, retention, sessions, restarts."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from queue_server.mqtt.broker import (
    AmqttBroker,
    BrokerError,
    MosquittoBroker,
    free_port,
    start_embedded_broker,
)
from queue_server.mqtt.client import (
    MQTTv5,
    MQTTv311,
    BrokerUnreachable,
    ConnectionRefused,
    connect_and_wait,
    disconnect_and_stop,
    subscribe_and_wait,
)

from .conftest import WAIT_S, BrokerUnderTest, Inbox, connected, needs_mosquitto


def test_qos1_message_reaches_subscriber(any_broker: BrokerUnderTest, clients) -> None:
    inbox = Inbox()
    subscriber = connected(clients, any_broker, "board-01", inbox=inbox)
    subscribe_and_wait(subscriber, [("motcua/test/events/#", 1)])
    publisher = connected(clients, any_broker, "server")

    publisher.publish("motcua/test/events/call", "Xin mời A015".encode(), qos=1).wait_for_publish(WAIT_S)

    [message] = inbox.wait_for(lambda got: len(got) == 1)
    assert (message.topic, message.payload.decode(), message.qos) == (
        "motcua/test/events/call", "Xin mời A015", 1)


def test_retained_message_reaches_a_late_subscriber(any_broker: BrokerUnderTest, clients) -> None:
    publisher = connected(clients, any_broker, "server")
    publisher.publish("motcua/test/state/today", b'{"issued":3}', qos=1, retain=True).wait_for_publish(WAIT_S)

    inbox = Inbox()
    late = connected(clients, any_broker, "board-02", inbox=inbox)
    subscribe_and_wait(late, [("motcua/test/state/#", 1)])

    [message] = inbox.wait_for(lambda got: len(got) == 1)
    assert (message.payload, message.retain) == (b'{"issued":3}', True)


def test_persistent_session_receives_what_was_published_while_away(
        any_broker: BrokerUnderTest, clients) -> None:
    first = connected(clients, any_broker, "motcua-server", clean_start=False)
    subscribe_and_wait(first, [("motcua/test/device/+/event/+", 1)])
    first.disconnect()
    first.loop_stop()

    publisher = connected(clients, any_broker, "rating-03")
    for seq in (1, 2):
        publisher.publish("motcua/test/device/rating-03/event/rating", f"press {seq}".encode(),
                          qos=1).wait_for_publish(WAIT_S)

    inbox = Inbox()
    again = clients("motcua-server", clean_start=False, protocol=any_broker.protocol)
    again.on_message = inbox.on_message
    assert connect_and_wait(again, any_broker.host, any_broker.port, timeout=WAIT_S) is True

    inbox.wait_for_payloads(b"press 1", b"press 2")


@needs_mosquitto
def test_mosquitto_keeps_sessions_and_retained_messages_across_a_restart(
        mosquitto: MosquittoBroker, clients) -> None:
    server = connected(clients, mosquitto, "motcua-server", clean_start=False)
    subscribe_and_wait(server, [("motcua/test/device/+/event/+", 1)])
    server.disconnect()
    server.loop_stop()
    kiosk = connected(clients, mosquitto, "kiosk-01")
    kiosk.publish("motcua/test/device/kiosk-01/status", b"online", qos=1, retain=True).wait_for_publish(WAIT_S)
    kiosk.publish("motcua/test/device/kiosk-01/event/printer", b"paper_low", qos=1).wait_for_publish(WAIT_S)
    kiosk.disconnect()
    kiosk.loop_stop()

    mosquitto.restart()

    inbox = Inbox()
    server = clients("motcua-server", clean_start=False)
    server.on_message = inbox.on_message
    assert connect_and_wait(server, mosquitto.host, mosquitto.port, timeout=WAIT_S) is True
    inbox.wait_for_payloads(b"paper_low")
    retained = Inbox()
    board = connected(clients, mosquitto, "board-01", inbox=retained)
    subscribe_and_wait(board, [("motcua/test/device/+/status", 1)])
    assert retained.wait_for(lambda got: len(got) == 1)[0].payload == b"online"
    assert (mosquitto.data_dir / "mosquitto.db").exists()


def test_amqtt_forgets_sessions_and_retained_messages_on_restart(amqtt_broker: AmqttBroker,
                                                                  clients) -> None:
    """amqtt keeps everything in memory (its persistence plugin needs sqlalchemy + aiosqlite)."""
    server = connected(clients, amqtt_broker, "motcua-server", clean_start=False, protocol=MQTTv311)
    subscribe_and_wait(server, [("motcua/test/#", 1)])
    server.disconnect()
    server.loop_stop()
    kiosk = connected(clients, amqtt_broker, "kiosk-01", protocol=MQTTv311)
    kiosk.publish("motcua/test/device/kiosk-01/status", b"online", qos=1, retain=True).wait_for_publish(WAIT_S)
    kiosk.disconnect()
    kiosk.loop_stop()

    amqtt_broker.restart()

    again = clients("motcua-server", clean_start=False, protocol=MQTTv311)
    assert connect_and_wait(again, amqtt_broker.host, amqtt_broker.port, timeout=WAIT_S) is False
    inbox = Inbox()
    board = connected(clients, amqtt_broker, "board-01", inbox=inbox, protocol=MQTTv311)
    subscribe_and_wait(board, [("motcua/test/#", 1)])
    marker = connected(clients, amqtt_broker, "marker", protocol=MQTTv311)
    marker.publish("motcua/test/marker", b"after", qos=1).wait_for_publish(WAIT_S)
    # The marker arrives; the retained status from before the restart never does.
    assert [m.payload for m in inbox.wait_for(lambda got: len(got) >= 1)] == [b"after"]


def test_will_is_published_when_a_client_vanishes(any_broker: BrokerUnderTest, clients) -> None:
    inbox = Inbox()
    watcher = connected(clients, any_broker, "server", inbox=inbox)
    subscribe_and_wait(watcher, [("motcua/test/device/+/status", 1)])
    kiosk = connected(clients, any_broker, "kiosk-02",
                      will=("motcua/test/device/kiosk-02/status", b"offline", True))

    kiosk.loop_stop()
    kiosk.socket().shutdown(socket.SHUT_RDWR)  # a pulled cable: no DISCONNECT packet

    [message] = inbox.wait_for(lambda got: len(got) == 1)
    assert (message.topic, message.payload) == ("motcua/test/device/kiosk-02/status", b"offline")


@needs_mosquitto
def test_refused_connection_raises_and_leaves_the_client_disconnected(tmp_path: Path, clients) -> None:
    no_users = tmp_path / "passwords"
    no_users.write_text("")
    with MosquittoBroker("127.0.0.1", free_port(), tmp_path / "mq", password_file=no_users) as broker:
        client = clients("kiosk-01")
        with pytest.raises(ConnectionRefused, match="Not authorized") as refused:
            connect_and_wait(client, broker.host, broker.port, timeout=WAIT_S)
        assert refused.value.reason.is_failure
        assert not client.is_connected()


def test_unreachable_broker_raises(clients) -> None:
    with pytest.raises(BrokerUnreachable, match="cannot reach"):
        connect_and_wait(clients("kiosk-01"), "127.0.0.1", free_port(), timeout=WAIT_S)


def test_client_socket_has_tcp_nodelay(any_broker: BrokerUnderTest, clients) -> None:
    client = connected(clients, any_broker, "kiosk-01")
    assert client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@needs_mosquitto
def test_websockets_listener_relays_to_tcp_clients(mosquitto: MosquittoBroker, clients) -> None:
    inbox = Inbox()
    board = clients("board-ws", transport="websockets")
    board.on_message = inbox.on_message
    connect_and_wait(board, mosquitto.host, mosquitto.websockets_port, timeout=WAIT_S)
    subscribe_and_wait(board, [("motcua/test/events/call", 1)])
    server = connected(clients, mosquitto, "server")

    server.publish("motcua/test/events/call", b"A015", qos=1).wait_for_publish(WAIT_S)

    assert inbox.wait_for(lambda got: len(got) == 1)[0].payload == b"A015"


@needs_mosquitto
def test_mosquitto_config_carries_the_measured_settings(tmp_path: Path) -> None:
    broker = MosquittoBroker("127.0.0.1", 1883, tmp_path, websockets_port=9001)
    lines = broker.config_text().splitlines()
    for expected in ("set_tcp_nodelay true", "persistence true", "max_queued_messages 100000",
                     "max_inflight_messages 1000", "allow_anonymous true", "socket_domain ipv4",
                     "listener 1883 127.0.0.1", "listener 9001 127.0.0.1", "protocol websockets"):
        assert expected in lines


@needs_mosquitto
def test_mosquitto_start_failure_shows_its_log(tmp_path: Path) -> None:
    broker = MosquittoBroker("127.0.0.1", free_port(), tmp_path / "mq",
                             acl_file=tmp_path / "missing.acl", run_as="root")
    with pytest.raises(BrokerError, match="(?s)exited.*acl"):
        broker.start()
    assert not broker.is_running()


@needs_mosquitto
def test_mosquitto_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        broker = MosquittoBroker("127.0.0.1", taken.getsockname()[1], tmp_path / "mq")
        with pytest.raises(BrokerError, match="already in use"):
            broker.start()


@needs_mosquitto
def test_mosquitto_kill_stops_it_at_once(mosquitto: MosquittoBroker) -> None:
    mosquitto.kill()
    assert not mosquitto.is_running()
    mosquitto.start()
    assert mosquitto.is_running()


def test_amqtt_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        with pytest.raises(BrokerError, match="already in use"):
            AmqttBroker("127.0.0.1", taken.getsockname()[1]).start()


@pytest.mark.parametrize("prefer, expected", [
    pytest.param("mosquitto", MosquittoBroker, marks=needs_mosquitto),
    ("amqtt", AmqttBroker),
    pytest.param("auto", MosquittoBroker, marks=needs_mosquitto),
])
def test_start_embedded_broker_picks_the_preferred_one(tmp_path: Path, clients, prefer, expected) -> None:
    broker = start_embedded_broker("127.0.0.1", free_port(), tmp_path / "mq", prefer=prefer)
    try:
        assert type(broker) is expected
        probe = clients("probe", protocol=MQTTv5 if expected is MosquittoBroker else MQTTv311)
        connect_and_wait(probe, broker.host, broker.port, timeout=WAIT_S)
        disconnect_and_stop(probe)  # before the broker goes, or paho waits to reconnect
    finally:
        broker.stop()
