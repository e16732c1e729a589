"""The ticket kiosk's controller (no Kivy) against a real Mosquitto, a real server link and SQLite.

Each test gets its own broker, server (real clock) and kiosk. "Exactly once" is checked
without sleeping: after the case under test the kiosk asks for one more ticket (a new
transaction) and waits for it. The kiosk publishes in order, the broker relays in order and
the server answers one message after another, so when that answer arrives every earlier
(repeated) request has been answered too, and any second call of on_done would have happened.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiosk.settings import load_kiosk_settings
from kiosk.ticket.controller import IssueResult, TicketKiosk, request_properties
from kiosk.ticket.run import make_printer
from queue_server.config import Config
from queue_server.domain.counters import Action
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker, free_port, mosquitto_available
from queue_server.mqtt.client import connect_and_wait, disconnect_and_stop, make_client, subscribe_and_wait
from queue_server.mqtt.link import ServerLink
from queue_server.server import Server, build
from tests.conftest import sample_config
from tests.kiosk.virtual_printer import PAPER_OUT, VirtualPrinter, raster_commands

WAIT_S = 15.0  # generous: only ever a deadline for something that is expected to happen
DEVICE = "kiosk-01"

pytestmark = pytest.mark.skipif(not mosquitto_available(), reason="mosquitto not installed")


class Outcomes:
    """What the controller told the screen, in order: ("slow", None) and ("done", IssueResult)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, IssueResult | None]] = []
        self._changed = threading.Condition()

    def on_done(self, result: IssueResult) -> None:
        with self._changed:
            self.events.append(("done", result))
            self._changed.notify_all()

    def on_slow(self) -> None:
        with self._changed:
            self.events.append(("slow", None))
            self._changed.notify_all()

    def done(self, transaction: str | None = None) -> list[IssueResult]:
        with self._changed:
            return [result for kind, result in self.events
                    if kind == "done" and (transaction is None or result.transaction == transaction)]

    def kinds(self) -> list[str]:
        with self._changed:
            return [kind for kind, _ in self.events]

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                raise AssertionError(f"timed out waiting for {what}; events so far: {self.events}")

    def wait_done(self, transaction: str, timeout: float = WAIT_S) -> IssueResult:
        self.wait_for(lambda: bool(self.done(transaction)), f"the end of {transaction}", timeout)
        return self.done(transaction)[0]


@dataclass
class Rig:
    broker: MosquittoBroker
    server: Server
    link: ServerLink
    kiosk: TicketKiosk

    def restart_link(self) -> None:
        """The server comes back: a new link with the same (persistent) MQTT session."""
        self.link = ServerLink(self.server.service, self.broker.host, self.broker.port)
        self.link.start()

    def tickets(self) -> list[tuple[str, str, str]]:
        return self.server.store.db.execute("SELECT id, issued_field_id, status FROM tickets ORDER BY id").fetchall()

    def tickets_for(self, transaction: str) -> list[str]:
        """Ids of the tickets the server issued for this kiosk transaction (idempotency keys)."""
        rows = self.server.store.db.execute(
            "SELECT ticket_id FROM idempotency WHERE scope = ? AND key = ?", [f"device:{DEVICE}", transaction],
        ).fetchall()
        return [row[0] for row in rows]

    def one_more_ticket(self, outcomes: Outcomes, field_id: str = "ho-tich") -> IssueResult:
        """The barrier described in the module docstring."""
        transaction = self.kiosk.request_ticket(field_id, None, "vi", outcomes.on_done, outcomes.on_slow)
        result = outcomes.wait_done(transaction)
        assert result.ticket is not None, result
        return result


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """make_rig(config=None, requests={...}, printer={...}): broker, server, link and a started,
    online kiosk. Everything is stopped at teardown, whatever state the test left it in."""
    made: list[Rig] = []

    def factory(config: Config | None = None, *, requests: dict | None = None, printer: dict | None = None) -> Rig:
        broker = MosquittoBroker("127.0.0.1", free_port(), tmp_path / "broker")
        broker.start()
        server = build(config or sample_config(**{"chung-thuc": {"closed": True}}), tmp_path / "data")
        link = ServerLink(server.service, broker.host, broker.port)
        link.start()
        settings = load_kiosk_settings(
            None, device=DEVICE, site=server.config.site.id,
            mqtt={"host": broker.host, "port": broker.port},
            requests=requests or {"retry_every_s": 0.5, "answer_within_s": 1, "give_up_after_s": 30},
            printer=printer or {"kind": "dummy"},
        )
        kiosk = TicketKiosk(settings)
        if printer is not None:
            kiosk.printer = make_printer(settings, kiosk)
        rig = Rig(broker, server, link, kiosk)
        made.append(rig)
        kiosk.start()
        wait_until(lambda: kiosk.online() and kiosk.state.config is not None, "the kiosk online with the config")
        return rig

    yield factory
    for rig in made:
        rig.kiosk.stop()
        rig.link.stop()
        rig.server.store.close()
        rig.broker.stop()


@pytest.fixture
def virtual_printer() -> Iterator[Callable[..., VirtualPrinter]]:
    opened: list[VirtualPrinter] = []

    def factory(**options) -> VirtualPrinter:
        printer = VirtualPrinter(**options)
        opened.append(printer)
        return printer

    yield factory
    for printer in opened:
        printer.close()


def test_a_touch_while_the_broker_is_down_gets_one_ticket_when_it_is_back(make_rig) -> None:
    rig = make_rig()
    outcomes = Outcomes()
    rig.broker.stop()
    wait_until(lambda: not rig.kiosk.state.broker_connected, "the kiosk to notice the broker is gone")

    transaction = rig.kiosk.request_ticket("dat-dai", None, "vi", outcomes.on_done, outcomes.on_slow)
    # The citizen is told the kiosk keeps trying (and not to touch again) before anything else.
    outcomes.wait_for(lambda: "slow" in outcomes.kinds(), "on_slow while the broker is down")
    assert outcomes.done() == [] and rig.tickets() == []

    rig.broker.start()  # same port, same data directory: the server's session was persisted
    result = outcomes.wait_done(transaction)
    assert result.error_code is None and result.ticket is not None
    assert result.ticket.code == "A001" and result.field_name_vi == "Đất đai"
    assert outcomes.kinds().index("slow") < outcomes.kinds().index("done")

    rig.one_more_ticket(outcomes)
    # The request went out many times (paho's queue, the resend on connect, the retry timer):
    # one ticket, and the citizen was told once.
    assert rig.tickets_for(transaction) == [result.ticket.ticket_id]
    assert [row[1] for row in rig.tickets()].count("dat-dai") == 1
    assert len(outcomes.done(transaction)) == 1


def test_a2_a_touch_given_up_while_the_broker_was_unreachable_issues_nothing_later(make_rig) -> None:
    """The kiosk could not reach the broker, gave up and told the citizen no ticket was issued:
    when the broker is back, nothing of that request may reach the server (no ticket nobody holds)."""
    rig = make_rig(requests={"retry_every_s": 0.2, "answer_within_s": 0.4, "give_up_after_s": 1.0})
    outcomes = Outcomes()
    rig.broker.stop()
    wait_until(lambda: not rig.kiosk.state.broker_connected, "the kiosk to notice the broker is gone")
    transaction = rig.kiosk.request_ticket("dat-dai", None, "vi", outcomes.on_done, outcomes.on_slow)
    assert outcomes.wait_done(transaction).error_code == "unreachable"

    rig.broker.start()
    wait_until(rig.kiosk.online, "the kiosk back online")
    rig.one_more_ticket(outcomes)  # a later request, answered: the earlier one would have come first
    assert rig.tickets_for(transaction) == []
    assert [row[1] for row in rig.tickets()] == ["ho-tich"]


def test_b_server_down_longer_than_give_up_says_so_once(make_rig) -> None:
    """Documents what happens to the request: the broker keeps the repeated requests in the
    server's persistent session, and when the server comes back it issues the ticket (once,
    by the transaction) although the citizen was told that none was issued. That ticket waits
    in the queue with nobody holding it until a clerk calls it and records a no-show; it also
    counts in "people ahead" and the estimated wait of everyone behind it. The kiosk itself
    ignores the late answer: on_done is called once, with "unreachable"."""
    rig = make_rig(requests={"retry_every_s": 0.2, "answer_within_s": 0.4, "give_up_after_s": 1.5})
    outcomes = Outcomes()
    rig.link.stop()
    wait_until(lambda: rig.kiosk.state.server_status == "stopped", "the kiosk to see the server stopped")

    started = time.monotonic()
    transaction = rig.kiosk.request_ticket("dat-dai", None, "vi", outcomes.on_done, outcomes.on_slow)
    result = outcomes.wait_done(transaction)
    assert time.monotonic() - started >= 1.5  # not a timing assert on speed: it must not give up early
    assert result.ticket is None and result.error_code == "unreachable"
    vietnamese, english = result.error_message.split(" / ")
    assert vietnamese.startswith("Không kết nối được máy chủ") and "chưa lấy được số" in vietnamese
    assert english.startswith("Cannot reach the server")
    assert outcomes.kinds() == ["slow", "done"]
    assert rig.tickets() == []

    rig.restart_link()
    rig.one_more_ticket(outcomes)
    assert len(outcomes.done(transaction)) == 1
    late = rig.tickets_for(transaction)
    assert len(late) == 1, "today the queued request is answered late (see the docstring)"
    assert dict((row[0], row[2]) for row in rig.tickets())[late[0]] == "waiting"


def test_c_a_double_touch_joins_the_request_in_flight(make_rig) -> None:
    rig = make_rig()
    outcomes = Outcomes()
    # The server is away for a moment so that the second touch surely comes while the first
    # request is in flight (otherwise a fast answer could end it in between).
    rig.link.stop()
    first = rig.kiosk.request_ticket("dat-dai", None, "vi", outcomes.on_done, outcomes.on_slow)
    second = rig.kiosk.request_ticket("dat-dai", None, "vi", outcomes.on_done, outcomes.on_slow)
    assert second == first
    rig.restart_link()
    result = outcomes.wait_done(first)
    assert result.ticket is not None and result.ticket.code == "A001"
    after = rig.one_more_ticket(outcomes)
    assert after.transaction != first  # once answered, a touch is a new request
    assert len(outcomes.done(first)) == 1
    assert [row[1] for row in rig.tickets()].count("dat-dai") == 1


def test_d_daily_cap_reached_and_closed_field_are_answered_plainly(make_rig) -> None:
    rig = make_rig(sample_config(**{"ho-tich": {"daily_cap": 1}, "chung-thuc": {"closed": True}}))
    outcomes = Outcomes()
    first = rig.kiosk.request_ticket("ho-tich", None, "vi", outcomes.on_done, outcomes.on_slow)
    assert outcomes.wait_done(first).ticket is not None

    second = rig.kiosk.request_ticket("ho-tich", None, "vi", outcomes.on_done, outcomes.on_slow)
    refused = outcomes.wait_done(second)
    assert refused.ticket is None and refused.error_code == "daily_cap_reached"
    assert refused.error_message.startswith("Đã hết số hôm nay cho Hộ tịch / ")

    tiles = {tile.field: tile for tile in rig.kiosk.tiles()}
    assert not tiles["chung-thuc"].available and tiles["chung-thuc"].reason == "closed"
    # The tile is disabled on screen, but a request that still comes (a stale screen) is refused.
    closed = rig.kiosk.request_ticket("chung-thuc", None, "vi", outcomes.on_done, outcomes.on_slow)
    refused_closed = outcomes.wait_done(closed)
    assert refused_closed.ticket is None and refused_closed.error_code == "field_closed"
    assert refused_closed.error_message.startswith("Lĩnh vực Chứng thực đang tạm dừng / ")
    assert [row[1] for row in rig.tickets()] == ["ho-tich"]
    assert outcomes.kinds() == ["done", "done", "done"]


def test_d2_a_field_at_its_daily_cap_is_shown_as_such(make_rig) -> None:
    rig = make_rig(sample_config(**{"ho-tich": {"daily_cap": 1}}))
    outcomes = Outcomes()
    rig.one_more_ticket(outcomes, "ho-tich")
    wait_until(lambda: (rig.kiosk.state.queues.get("ho-tich") is not None
                        and rig.kiosk.state.queues["ho-tich"].waiting == 1), "the queue state after the ticket")
    tile = next(tile for tile in rig.kiosk.tiles() if tile.field == "ho-tich")
    assert not tile.available and tile.reason == "cap_reached"


def test_e_paper_out_keeps_the_ticket_and_tells_the_server(make_rig, virtual_printer) -> None:
    printer = virtual_printer(paper_status=PAPER_OUT)
    rig = make_rig(printer={"kind": "network", "host": printer.host, "port": printer.port, "timeout_s": 2})
    outcomes = Outcomes()
    transaction = rig.kiosk.request_ticket("dat-dai", None, "vi", outcomes.on_done, outcomes.on_slow)
    result = outcomes.wait_done(transaction)
    assert result.ticket is not None and result.ticket.code == "A001"
    assert result.printed is False and result.printer_state == "paper_out"
    assert "no paper" in result.printer_detail

    connection = printer.wait_for_connections(1)[0]
    assert connection.status_queries == [4]  # asked the paper sensor...
    assert raster_commands(connection.printed) == []  # ...and sent no picture

    def device() -> dict | None:
        return next((d for d in rig.server.store.list_devices() if d["device_id"] == DEVICE), None)

    wait_until(lambda: (device() or {}).get("printer_state") == "paper_out", "the server to record paper_out")
    assert "no paper" in device()["printer_detail"]


def test_f_the_kiosk_hears_its_queues_but_not_todays_figures_counters_or_calls(make_rig) -> None:
    """At a busy centre state/today, state/counter/… and events/call are most of the server's
    messages and a kiosk draws none of them: it subscribes to its responses, the config, the
    queues and the server's status only (contract.ticket_kiosk_subscriptions)."""
    rig = make_rig()
    site = rig.server.config.site.id
    everything: list[tuple[str, bool]] = []  # (topic, retained) as a client subscribed to all of it hears
    heard: list[str] = []  # what the broker delivers to a second kiosk, retained messages included
    lock = threading.Lock()

    def on_everything(client, userdata, message) -> None:
        with lock:
            everything.append((message.topic, bool(message.retain)))

    observer = make_client("test-observer")
    observer.on_message = on_everything
    connect_and_wait(observer, rig.broker.host, rig.broker.port, timeout=WAIT_S)
    subscribe_and_wait(observer, [(f"motcua/{site}/#", 1)], timeout=WAIT_S)

    settings = load_kiosk_settings(None, device="kiosk-02", site=site,
                                   mqtt={"host": rig.broker.host, "port": rig.broker.port},
                                   requests={"retry_every_s": 0.5, "answer_within_s": 1, "give_up_after_s": 30},
                                   printer={"kind": "dummy"})
    kiosk = TicketKiosk(settings)
    kiosk_on_message = kiosk.client.on_message

    def record(client, userdata, message) -> None:
        with lock:
            heard.append(message.topic)
        kiosk_on_message(client, userdata, message)

    kiosk.client.on_message = record
    kiosk.start()
    try:
        wait_until(lambda: kiosk.online() and kiosk.state.config is not None, "the second kiosk online")
        # A counter opens, calls the first kiosk's ticket and finishes it: the counter's state, a
        # call, today's figures and the queue all change.
        service = rig.server.service
        outcomes = Outcomes()
        service.counter_action("quay-1", Action.OPEN, clerk_id="nguyen-van-an")
        rig.one_more_ticket(outcomes, "dat-dai")
        wait_until(lambda: getattr(kiosk.state.queues.get("dat-dai"), "waiting", 0) == 1,
                   "the second kiosk to see the ticket waiting")
        service.counter_action("quay-1", Action.NEXT)
        service.counter_action("quay-1", Action.FINISH)
        live = {contract.topic_call(site), contract.topic_today(site), contract.topic_counter_state(site, "quay-1")}

        def published_live() -> bool:
            with lock:
                return live <= {topic for topic, retained in everything if not retained}

        wait_until(published_live, "the call, the counter's state and today's figures published")
        # The second kiosk's own request is answered after all of that went through the broker
        # (one broker, in order): whatever it was sent of it, it has by the answer.
        transaction = kiosk.request_ticket("ho-tich", None, "vi", outcomes.on_done, outcomes.on_slow)
        assert outcomes.wait_done(transaction).ticket is not None
        wait_until(lambda: getattr(kiosk.state.queues.get("ho-tich"), "waiting", 0) == 1,
                   "the second kiosk to see its own ticket waiting")
    finally:
        kiosk.stop()
        disconnect_and_stop(observer)

    with lock:
        topics = set(heard)
    assert {contract.topic_queue_state(site, "dat-dai"), contract.topic_queue_state(site, "ho-tich")} <= topics
    assert {contract.topic_config(site), contract.topic_server_status(site),
            contract.topic_ticket_response(site, "kiosk-02")} <= topics
    assert contract.topic_ticket_response(site, DEVICE) not in topics  # not the other kiosk's answers
    unwanted = {topic for topic in topics
                if topic == contract.topic_today(site) or topic.startswith(f"motcua/{site}/state/counter/")
                or topic.startswith(f"motcua/{site}/events/") or topic == contract.topic_alerts(site)}
    assert unwanted == set(), unwanted  # while `everything` had them live (waited for above)


def test_g_a_request_expires_when_the_kiosk_gives_up_in_whole_seconds_at_least_one() -> None:
    assert request_properties(60).MessageExpiryInterval == 60
    assert request_properties(29.2).MessageExpiryInterval == 30  # never before the kiosk gives up
    assert request_properties(0.1).MessageExpiryInterval == 1
    assert request_properties(-3).MessageExpiryInterval == 1  # already past: the shortest expiry

