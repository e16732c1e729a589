"""The building's network cut between the devices and the broker, then back.

Real devices (three rating terminals with their on-disk outboxes, two ticket kiosks, each its
own controller and paho client) reach a real Mosquitto through a TCP proxy on loopback
(tests/resilience/netcut.py); the server is beside the broker and keeps working. While the
network is cut:

- the broker publishes every device's Last Will: the devices table says offline;
- citizens press rating buttons: each press waits in its terminal's outbox, is delivered
  after the network is back and counted exactly once, judged at the time it was pressed (the
  server's clock has moved past the rating window meanwhile); a second press on the same
  ticket is kept but flagged;
- a touch on a kiosk that gives up before the network is back fails plainly (the bilingual
  "no ticket was issued" message, nothing printed); the same transaction sent again after
  the network is back gives exactly one ticket;
- a touch on a kiosk that keeps trying gets its ticket once the network is back: printed
  once, one ticket for its transaction.

Then every device is online again, and the ending of every resilience test holds.
Short form: the connections dropped for a few seconds. Long form (`-m long`): minutes, with
the connections dropped, and with the traffic silently lost (blackhole: each side notices only
by its keepalive).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiosk.rating.controller import RatingTerminal
from kiosk.rating.settings import load_rating_settings
from kiosk.settings import load_kiosk_settings
from kiosk.ticket.controller import IssueResult, TicketKiosk
from queue_server.domain.counters import Action
from queue_server.domain.timeutil import FixedClock
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker
from queue_server.mqtt.client import MQTTv5, subscribe_and_wait
from queue_server.server import Server
from tests.conftest import MONDAY_9AM
from tests.mqtt.conftest import Inbox, connected
from tests.mqtt.helpers import linked_server, site_config, wait_until

from .ending import check_nothing_lost
from .netcut import NetCut

SITE = "hcc-test"
WINDOW_S = 120  # the rating window; the cut outlasts it on the server's clock
WAIT_S = 30.0  # a deadline for what must happen, never an expectation of speed
COUNTERS = ("quay-1", "quay-2", "quay-3")


@dataclass
class Kiosk:
    """A ticket kiosk controller and what it told its screen and printer."""

    controller: TicketKiosk
    results: list[IssueResult] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)  # ticket ids sent to the printer
    slow: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def print_ticket(self, result: IssueResult) -> tuple[bool, str, str | None]:
        with self.changed:
            self.printed.append(result.ticket.ticket_id)
        return True, "ok", None

    def touch(self, field_id: str = "dat-dai") -> str:
        def done(result: IssueResult) -> None:
            with self.changed:
                self.results.append(result)
                self.changed.notify_all()

        def slow() -> None:
            with self.changed:
                self.slow.append("slow")
                self.changed.notify_all()

        return self.controller.request_ticket(field_id, None, "vi", done, slow)

    def result(self, transaction: str, timeout: float = WAIT_S) -> IssueResult:
        with self.changed:
            if not self.changed.wait_for(lambda: any(r.transaction == transaction for r in self.results), timeout):
                raise AssertionError(f"no answer to {transaction} on the kiosk's screen within {timeout} s")
            return next(r for r in self.results if r.transaction == transaction)


@dataclass
class Centre:
    server: Server
    clock: FixedClock
    network: NetCut
    terminals: dict[str, RatingTerminal]  # by counter
    impatient: Kiosk  # gives up after a few seconds
    patient: Kiosk  # keeps trying for minutes

    @property
    def devices(self) -> list[str]:
        return [t.device for t in self.terminals.values()] + [k.controller.device for k in (self.impatient, self.patient)]

    def statuses(self) -> dict[str, str | None]:
        rows = {row["device_id"]: row["status"] for row in self.server.store.list_devices()}
        return {device: rows.get(device) for device in self.devices}

    def finish_one(self, counter: str) -> str:
        """A ticket issued, called and finished at `counter`; its id (now awaiting its rating)."""
        service = self.server.service
        service.issue_ticket("dat-dai")
        service.counter_action(counter, Action.NEXT)
        self.clock.advance(seconds=20)  # the service itself
        ticket_id = service.counter_action(counter, Action.FINISH)["tickets"][-1]["id"]
        terminal = self.terminals[counter]
        wait_until(f"{terminal.device} to offer the rating of {ticket_id}",
                   lambda: (terminal.state.counter.rating_ticket_id if terminal.state.counter else None,
                            terminal.awaiting_rating()),
                   lambda seen: seen == (ticket_id, True), WAIT_S)
        return ticket_id


@pytest.fixture
def centre(mosquitto: MosquittoBroker, network: NetCut, tmp_path: Path) -> Iterator[Centre]:
    clock = FixedClock(MONDAY_9AM)
    config = site_config(site=SITE, counters=len(COUNTERS), window_s=WINDOW_S)
    via_network = {"host": network.host, "port": network.port}
    with linked_server(config, tmp_path / "data", clock, mosquitto.host, mosquitto.port, MQTTv5) as (server, _link):
        terminals = {
            counter: RatingTerminal(load_rating_settings(
                None, device=f"rating-{n}", site=SITE, counter=counter, mqtt=via_network,
                outbox=str(tmp_path / f"rating-{n}.outbox.sqlite3")), clock=clock.now)
            for n, counter in enumerate(COUNTERS, start=1)
        }
        kiosks = []
        for device, give_up_s in (("kiosk-1", 2.0), ("kiosk-2", 600.0)):
            settings = load_kiosk_settings(None, device=device, site=SITE, mqtt=via_network, requests={
                "answer_within_s": 1.0, "retry_every_s": 0.5, "give_up_after_s": give_up_s})
            kiosk = Kiosk(TicketKiosk(settings))
            kiosk.controller.printer = kiosk.print_ticket
            kiosks.append(kiosk)
        centre = Centre(server, clock, network, terminals, *kiosks)
        for device in (*terminals.values(), *(k.controller for k in kiosks)):
            device.start()
        try:
            wait_until("every device online (its own view and the devices table)",
                       lambda: ([t.online() and t.state.config is not None for t in terminals.values()],
                                [k.controller.online() and k.controller.state.config is not None for k in kiosks],
                                centre.statuses()),
                       lambda seen: all(seen[0]) and all(seen[1]) and set(seen[2].values()) == {"online"}, WAIT_S)
            yield centre
        finally:
            network.restore()
            for terminal in terminals.values():
                terminal.stop()
            for kiosk in kiosks:
                kiosk.controller.stop()


def resend_transaction(clients: Callable, mosquitto: MosquittoBroker, device: str, transaction: str) -> dict:
    """The same request again, from a client standing in for the kiosk, and its answer."""
    inbox = Inbox()
    client = connected(clients, mosquitto, f"{device}-again", inbox=inbox)
    response_topic = contract.topic_ticket_response(SITE, device)
    subscribe_and_wait(client, [(response_topic, 1)], timeout=WAIT_S)
    request = contract.TicketRequest(transaction=transaction, field="dat-dai")
    client.publish(contract.topic_ticket_request(SITE, device), contract.encode(request), qos=1).wait_for_publish(WAIT_S)
    got = inbox.wait_for(lambda got: any(m.topic == response_topic for m in got), WAIT_S)
    return json.loads(next(m.payload for m in got if m.topic == response_topic))


def cut_and_restore(centre: Centre, clients: Callable, mosquitto: MosquittoBroker, *, mode: str, hold_s: float) -> None:
    server, service, clock = centre.server, centre.server.service, centre.clock
    store = server.store
    t1, t2, t3 = (centre.terminals[c] for c in COUNTERS)

    # Before the cut: one press delivered as usual, then a ticket awaiting its rating at each counter.
    rated_before = centre.finish_one("quay-3")
    before = {t3.press("very_satisfied")}
    wait_until("the press before the cut to be stored",
               lambda: store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0], lambda rows: rows == 1, WAIT_S)
    awaiting = {counter: centre.finish_one(counter) for counter in COUNTERS}
    assert rated_before != awaiting["quay-3"]

    # --- the cut ---------------------------------------------------------------------------------
    centre.network.cut(mode)
    # A minute later the citizens press; four more minutes pass on the server's clock (past
    # the 2-minute rating window) before their presses can arrive.
    clock.advance(minutes=1)
    during = {
        t1.press("satisfied"),
        t2.press("unsatisfied"),
        t2.press("very_satisfied"),  # an impatient second press on the same ticket: flagged
        t3.press("satisfied"),
    }
    gave_up = centre.impatient.touch()
    keeps_trying = centre.patient.touch()
    clock.advance(minutes=4)

    failed = centre.impatient.result(gave_up)
    wait_until("the Last Wills: every device offline in the devices table", centre.statuses,
               lambda seen: set(seen.values()) == {"offline"}, WAIT_S + (45 if mode == "blackhole" else 0))
    assert [t.unsent() for t in (t1, t2, t3)] == [1, 2, 1]  # on disk, waiting
    assert store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 1  # only the press before
    assert centre.patient.results == [] and centre.patient.slow  # told to wait, still trying
    threading.Event().wait(max(0.0, hold_s))  # the rest of the outage: nothing left to observe

    # --- back ------------------------------------------------------------------------------------
    centre.network.restore()
    wait_until("every outbox emptied", lambda: [t.unsent() for t in (t1, t2, t3)], lambda left: left == [0, 0, 0],
               WAIT_S + 60)
    wait_until("every device online again", centre.statuses, lambda seen: set(seen.values()) == {"online"}, WAIT_S)
    issued = centre.patient.result(keeps_trying, timeout=WAIT_S + 60)
    wait_until("every press stored", lambda: store.db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0],
               lambda rows: rows == len(before | during), WAIT_S)

    # The kiosk that gave up said so plainly and printed nothing.
    assert failed.ticket is None and failed.error_code == "unreachable" and not failed.printed
    vietnamese, english = failed.error_message.split(" / ")
    assert "chưa lấy được số" in vietnamese and "no ticket was issued" in english
    assert [r.transaction for r in centre.impatient.results] == [gave_up]
    assert centre.impatient.printed == []
    # Its transaction sent again now: exactly one ticket for it, however many copies went out.
    again = resend_transaction(clients, mosquitto, "kiosk-1", gave_up)
    assert again["status"] == "ok"
    assert resend_transaction(clients, mosquitto, "kiosk-1", gave_up)["data"]["ticket_id"] == again["data"]["ticket_id"]

    # The kiosk that kept trying printed its one ticket, once.
    assert issued.ticket is not None and issued.printed
    assert centre.patient.printed == [issued.ticket.ticket_id]
    assert [r.transaction for r in centre.patient.results] == [keeps_trying]

    ending = check_nothing_lost(service, msg_ids=before | during, idempotency_keys=[
        ("device:kiosk-1", gave_up), ("device:kiosk-2", keeps_trying)])
    # Counted: the press before the cut and one per ticket pressed during it, judged at the
    # time they were pressed (a minute into the window, although received after it closed).
    counted = dict(store.db.execute("SELECT ticket_id, level FROM ratings WHERE counted = 1").fetchall())
    assert counted == {rated_before: "very_satisfied", awaiting["quay-1"]: "satisfied",
                       awaiting["quay-2"]: "unsatisfied", awaiting["quay-3"]: "satisfied"}
    assert ending.flagged == {"already_rated": 1}
    today = service.stats_today()
    assert today["ratings"]["counted"] == 4 and today["ratings"]["flagged"] == 1
    assert today["ratings"]["by_level"] == {"very_satisfied": 1, "satisfied": 2, "unsatisfied": 1}
    assert store.reject_counts() == {}


def test_network_cut_for_a_few_seconds(centre: Centre, clients, mosquitto: MosquittoBroker) -> None:
    cut_and_restore(centre, clients, mosquitto, mode="drop", hold_s=2.0)


@pytest.mark.long
@pytest.mark.parametrize("mode", ["drop", "blackhole"])
def test_network_cut_for_minutes(centre: Centre, clients, mosquitto: MosquittoBroker, mode: str) -> None:
    cut_and_restore(centre, clients, mosquitto, mode=mode, hold_s=180.0)
