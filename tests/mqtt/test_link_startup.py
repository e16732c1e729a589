"""A server started while its external broker is down keeps working and connects when it comes up."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.client import BrokerUnreachable
from queue_server.mqtt.link import ServerLink

from .conftest import WAIT_S
from .test_link import app  # noqa: F401 - fixture reused


def test_link_keeps_trying_until_the_broker_comes_up(app, tmp_path: Path) -> None:
    port = free_port()
    link = ServerLink(app.service, "127.0.0.1", port)
    link.start(timeout=1, keep_trying=True)
    broker = MosquittoBroker("127.0.0.1", port, tmp_path / "late-broker")
    try:
        assert link.status() != "connected"
        # Tickets are still issued over HTTP meanwhile.
        assert app.service.issue_ticket("dat-dai")[0]["code"] == "A001"
        broker.start()
        deadline = time.monotonic() + WAIT_S + 30  # paho's reconnect back-off is at most 30 s
        while link.status() != "connected" and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for paho's background reconnect
        assert link.status() == "connected"
    finally:
        link.stop()
        broker.stop()


def test_without_keep_trying_an_unreachable_broker_is_an_error(app) -> None:
    link = ServerLink(app.service, "127.0.0.1", free_port())
    with pytest.raises(BrokerUnreachable):
        link.start(timeout=1)
    assert link.status() == "disconnected"
