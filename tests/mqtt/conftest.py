"""Real brokers on free ports in the test's own directory, and clients that are always closed."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from queue_server.mqtt.broker import AmqttBroker, MosquittoBroker, free_port, mosquitto_available
from queue_server.mqtt.client import (
    MQTTv5,
    MQTTv311,
    MqttClient,
    connect_and_wait,
    make_client,
)

WAIT_S = 10.0  # generous: a slow CI box must not fail a test that is only waiting for an event

needs_mosquitto = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Inbox:
    """Collects what a client receives; tests wait on it instead of sleeping."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._changed = threading.Condition()

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Received(message.topic, bytes(message.payload), message.qos,
                                          bool(message.retain)))
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = WAIT_S) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError(f"condition not met within {timeout} s; received {self.messages}")
            return list(self.messages)

    def wait_for_payloads(self, *payloads: bytes, timeout: float = WAIT_S) -> list[Received]:
        wanted = set(payloads)
        return self.wait_for(lambda got: wanted <= {m.payload for m in got}, timeout)


@dataclass
class BrokerUnderTest:
    broker: MosquittoBroker | AmqttBroker
    protocol: mqtt.MQTTProtocolVersion

    @property
    def host(self) -> str:
        return self.broker.host

    @property
    def port(self) -> int:
        return self.broker.port


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    if not mosquitto_available():
        pytest.fail("mosquitto is not installed: run `bash scripts/quickstart.sh test` as root to install it")
    broker = MosquittoBroker("127.0.0.1", free_port(), tmp_path / "mosquitto",
                             websockets_port=free_port())
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[AmqttBroker]:
    broker = AmqttBroker("127.0.0.1", free_port(), tmp_path / "amqtt")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(params=["mosquitto", "amqtt"])
def any_broker(request: pytest.FixtureRequest) -> BrokerUnderTest:
    if request.param == "mosquitto":
        return BrokerUnderTest(request.getfixturevalue("mosquitto"), MQTTv5)
    return BrokerUnderTest(request.getfixturevalue("amqtt_broker"), MQTTv311)


@pytest.fixture
def clients() -> Iterator[Callable[..., MqttClient]]:
    """A factory of clients (same arguments as make_client); all are disconnected at teardown."""
    made: list[MqttClient] = []

    def factory(client_id: str, **options: Any) -> MqttClient:
        client = make_client(client_id, **options)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.disconnect()
        client.loop_stop()


def connected(clients: Callable[..., MqttClient], target: BrokerUnderTest | MosquittoBroker | AmqttBroker,
              client_id: str, *, inbox: Inbox | None = None, **options: Any) -> MqttClient:
    """A client connected to `target`, its messages going to `inbox`."""
    if isinstance(target, BrokerUnderTest):
        options.setdefault("protocol", target.protocol)
    client = clients(client_id, **options)
    if inbox is not None:
        client.on_message = inbox.on_message
    connect_and_wait(client, target.host, target.port, timeout=WAIT_S)
    return client
