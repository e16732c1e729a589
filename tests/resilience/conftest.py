"""Fixtures of the resilience tests: the real Mosquitto and MQTT clients of tests/mqtt, a
network that can be cut, and the ending every test shares."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from queue_server.mqtt.broker import MosquittoBroker
from tests.mqtt.conftest import clients, mosquitto  # noqa: F401  (fixtures, re-exported)

from .netcut import NetCut


@pytest.fixture
def network(mosquitto: MosquittoBroker) -> Iterator[NetCut]:  # noqa: F811
    """The building's network between the devices and the broker (the server is beside the broker)."""
    with NetCut(mosquitto.host, mosquitto.port) as net:
        yield net
