"""Alerts over a real Mosquitto: a printer event from a kiosk raises an alert that is published
as `events/alert` and in the retained `state/alerts`, and both follow when it clears."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from queue_server.alerts_runner import AlertRunner
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker
from queue_server.mqtt.client import MqttClient, subscribe_and_wait
from queue_server.mqtt.link import ServerLink
from queue_server.server import Server

from .conftest import WAIT_S, Inbox, Received, connected
from .test_link import SITE, app, link, publish  # noqa: F401 - fixtures reused

STATE = contract.topic_alerts(SITE)
EVENTS = contract.topic_alert_event(SITE)


@pytest.fixture
def runner(app: Server, link: ServerLink) -> Iterator[AlertRunner]:
    # No periodic pass: every evaluation here follows a message from the kiosk.
    alert_runner = AlertRunner(app.service, interval_s=3600, min_gap_s=0)
    alert_runner.start()
    yield alert_runner
    alert_runner.stop()


def watcher(clients: Callable[..., MqttClient], broker: MosquittoBroker, client_id: str) -> Inbox:
    """A dashboard-like client subscribed to both alert topics."""
    inbox = Inbox()
    client = connected(clients, broker, client_id, inbox=inbox)
    subscribe_and_wait(client, [(STATE, 1), (EVENTS, 1)], timeout=WAIT_S)
    return inbox


def parsed(message: Received) -> contract.Message:
    inbound = contract.parse_from_server(SITE, message.topic, message.payload)
    assert inbound.message is not None
    return inbound.message


def wait_for_event(inbox: Inbox, event: str) -> contract.AlertEvent:
    got = inbox.wait_for(lambda got: any(m.topic == EVENTS and json.loads(m.payload)["event"] == event for m in got))
    return next(parsed(m) for m in got if m.topic == EVENTS and json.loads(m.payload)["event"] == event)


def last_state(inbox: Inbox, predicate: Callable[[contract.AlertsState], bool]) -> tuple[contract.AlertsState, Received]:
    def done(got: list[Received]) -> bool:
        states = [m for m in got if m.topic == STATE]
        return bool(states) and predicate(parsed(states[-1]))

    got = inbox.wait_for(done)
    message = [m for m in got if m.topic == STATE][-1]
    return parsed(message), message


def test_a_printer_out_of_paper_is_published_raised_retained_and_cleared(app: Server, runner, mosquitto, clients) -> None:
    dashboard = watcher(clients, mosquitto, "dashboard-1")
    last_state(dashboard, lambda state: state.active == [])  # published on connect: all is well

    kiosk = connected(clients, mosquitto, "kiosk-01")
    publish(kiosk, contract.topic_printer(SITE, "kiosk-01"), {"msg_id": "kiosk-01:1:1", "state": "paper_out", "detail": "hết giấy"})

    raised = wait_for_event(dashboard, "raised")
    assert (raised.alert.rule, raised.alert.kind, raised.alert.subject, raised.alert.severity) == (
        "printer", "printer_problem", "kiosk-01", "critical")
    assert raised.alert.message.vi == "Máy in của kiosk-01: hết giấy (hết giấy)"
    assert raised.alert.message.en == "Printer of kiosk-01: out of paper (hết giấy)"
    assert raised.alert.cleared_at is None
    state, _ = last_state(dashboard, lambda state: len(state.active) == 1)
    assert state.active[0] == raised.alert

    # A dashboard that starts now is given the open alerts at once: the state is retained.
    late = watcher(clients, mosquitto, "dashboard-2")
    state, message = last_state(late, lambda state: len(state.active) == 1)
    assert message.retain and state.active[0].id == raised.alert.id
    assert not any(m.topic == EVENTS for m in late.messages)  # events are not retained

    publish(kiosk, contract.topic_printer(SITE, "kiosk-01"), {"msg_id": "kiosk-01:1:2", "state": "ok"})
    cleared = wait_for_event(dashboard, "cleared")
    assert cleared.alert.id == raised.alert.id and cleared.alert.cleared_at is not None
    last_state(dashboard, lambda state: state.active == [])
    assert app.store.reject_counts() == {}


def test_motcua_serve_runs_the_alert_rules(mosquitto: MosquittoBroker, clients, tmp_path) -> None:
    """The production wiring: `motcua serve` starts the alert thread next to its MQTT link."""
    from queue_server.mqtt.broker import free_port

    from .helpers import ServerProcess, site_data, wait_until, write_site_toml

    site = "hcc-alerts"
    config_path = write_site_toml(tmp_path / "site.toml", site_data(site=site, counters=2), data_dir=tmp_path / "data",
                                  http_port=free_port(), mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    inbox = Inbox()
    dashboard = connected(clients, mosquitto, "dashboard-1", inbox=inbox)
    subscribe_and_wait(dashboard, [(contract.topic_alert_event(site), 1), (contract.topic_server_status(site), 1)],
                       timeout=WAIT_S)
    server = ServerProcess(config_path, tmp_path / "server.log")
    server.start()
    try:
        online = (contract.topic_server_status(site), b"online")

        def server_up() -> bool:
            assert server.running(), server.log()[-3000:]
            return any((m.topic, m.payload) == online for m in inbox.messages)

        wait_until("motcua serve online", server_up, bool, 30)
        kiosk = connected(clients, mosquitto, "kiosk-07")
        publish(kiosk, contract.topic_printer(site, "kiosk-07"), {"msg_id": "kiosk-07:1:1", "state": "error"})
        got = inbox.wait_for(lambda got: any(m.topic == contract.topic_alert_event(site) for m in got), timeout=30)
        event = next(json.loads(m.payload) for m in got if m.topic == contract.topic_alert_event(site))
        assert (event["event"], event["alert"]["subject"]) == ("raised", "kiosk-07")
        assert event["alert"]["message"]["vi"] == "Máy in của kiosk-07: báo lỗi"
    finally:
        assert server.terminate() == 0, server.log()[-3000:]
