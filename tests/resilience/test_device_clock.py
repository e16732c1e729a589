"""Devices whose clocks are hours off: the server keeps its own time.

A rating event carries `at`, the device's time of the press (PROTOCOL.md). The server records
it and judges a press that names its ticket at that time only when it is plausible (not
before the service ended, not after the press was received: domain/ratings.py `press_time`);
otherwise, and for every press that names no ticket, it uses its own receive time. The day a
press counts on is always the server's local day (`Rating.day`), and ticket requests carry no
time at all: a ticket's day and number are the server's.

Here two real rating terminals (their controllers and outboxes) run with clocks 5 hours ahead
and 5 hours behind, a button box sends presses without a ticket stamped 5 hours off, and a real
ticket kiosk asks for tickets, through a real Mosquitto, on an evening that crosses midnight on
the server's clock (21:00 Monday → 00:30 Tuesday, Asia/Ho_Chi_Minh) while the devices' clocks
say Tuesday 02:00 or Monday 16:00. Every press is counted once, on the server's day, repeats
are dropped, a second press on a rated ticket is flagged, and the figures are right.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

from kiosk.rating.controller import RatingTerminal
from kiosk.rating.settings import load_rating_settings
from kiosk.settings import load_kiosk_settings
from kiosk.ticket.controller import IssueResult, TicketKiosk
from queue_server.domain.counters import Action
from queue_server.domain.timeutil import FixedClock
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker
from queue_server.mqtt.client import MQTTv5
from tests.conftest import MONDAY_9AM
from tests.mqtt.conftest import connected
from tests.mqtt.helpers import linked_server, publish_all, site_config, wait_until

from .ending import check_nothing_lost

SITE = "hcc-test"
WAIT_S = 30.0
MONDAY_9PM = MONDAY_9AM + timedelta(hours=12)  # 21:00 local, 14:00 UTC
OFF = timedelta(hours=5)


def test_clocks_five_hours_off_count_once_on_the_servers_day(
        mosquitto: MosquittoBroker, clients, tmp_path: Path) -> None:
    clock = FixedClock(MONDAY_9PM)
    broker = {"host": mosquitto.host, "port": mosquitto.port}
    with linked_server(site_config(site=SITE, counters=3), tmp_path / "data", clock, mosquitto.host, mosquitto.port,
                       MQTTv5) as (server, _link):
        service, store = server.service, server.store
        ahead = RatingTerminal(load_rating_settings(None, device="rating-1", site=SITE, counter="quay-1", mqtt=broker,
                                                    outbox=str(tmp_path / "rating-1.sqlite3")),
                               clock=lambda: clock.now() + OFF)
        behind = RatingTerminal(load_rating_settings(None, device="rating-2", site=SITE, counter="quay-2", mqtt=broker,
                                                     outbox=str(tmp_path / "rating-2.sqlite3")),
                                clock=lambda: clock.now() - OFF)
        kiosk = TicketKiosk(load_kiosk_settings(None, device="kiosk-1", site=SITE, mqtt=broker))
        button_box = connected(clients, mosquitto, "button-3")
        box_presses: list[tuple[str, bytes]] = []

        def box_press(at: datetime) -> str:
            """The button box at quay-3: no ticket named, its own (wrong) time."""
            msg_id = f"button-3:1:{len(box_presses) + 1}"
            event = {"msg_id": msg_id, "counter": "quay-3", "level": "very_satisfied", "at": at.isoformat()}
            box_presses.append((contract.topic_rating(SITE, "button-3"), json.dumps(event).encode()))
            publish_all(button_box, [box_presses[-1]])
            return msg_id

        issued: list[IssueResult] = []
        answered = threading.Condition()

        def touch() -> IssueResult:
            def done(result: IssueResult) -> None:
                with answered:
                    issued.append(result)
                    answered.notify_all()

            transaction = kiosk.request_ticket("dat-dai", None, "vi", done)
            with answered:
                assert answered.wait_for(lambda: any(r.transaction == transaction for r in issued), WAIT_S)
            result = next(r for r in issued if r.transaction == transaction)
            assert result.ticket is not None, result
            return result

        def serve(counter: str, terminal: RatingTerminal | None = None) -> str:
            """The oldest waiting ticket called and finished at `counter` (the terminal told)."""
            service.counter_action(counter, Action.NEXT)
            clock.advance(minutes=5)
            ticket_id = service.counter_action(counter, Action.FINISH)["tickets"][-1]["id"]
            if terminal is not None:
                wait_until(f"{terminal.device} to know {ticket_id} awaits its rating",
                           lambda: terminal.state.counter and terminal.state.counter.rating_ticket_id,
                           lambda seen: seen == ticket_id, WAIT_S)
            clock.advance(seconds=30)  # the citizen reads the prompt
            return ticket_id

        def stored(msg_ids: set[str]) -> None:
            marks = ", ".join("?" for _ in msg_ids)
            wait_until("the presses to be stored",
                       lambda: store.db.execute(f"SELECT COUNT(*) FROM ratings WHERE msg_id IN ({marks})",
                                                list(msg_ids)).fetchone()[0],
                       lambda rows: rows == len(msg_ids), WAIT_S)

        for device in (ahead, behind, kiosk):
            device.start()
        try:
            wait_until("the devices online", lambda: (ahead.online(), behind.online(), kiosk.online()),
                       lambda seen: all(seen), WAIT_S)
            assert ahead.local_now().date() > behind.local_now().date()  # Tuesday 02:00 / Monday 16:00

            # --- Monday evening on the server's clock -------------------------------------------
            monday = [touch() for _ in range(3)]
            assert [r.ticket.code for r in monday] == ["A001", "A002", "A003"]
            first = serve("quay-1", ahead)
            second = serve("quay-2", behind)
            third = serve("quay-3")
            monday_presses = {
                ahead.press("very_satisfied"),  # names `first`, stamped Tuesday 02:xx
                behind.press("unsatisfied"),  # names `second`, stamped Monday 16:xx
                box_press(clock.now() + OFF),  # names nothing, stamped Tuesday
            }
            monday_presses.add(ahead.press("unsatisfied"))  # a second press on `first`: flagged
            stored(monday_presses)
            publish_all(button_box, box_presses)  # every button-box press again (a QoS 1 redelivery)

            # --- past midnight on the server's clock: Tuesday 00:30 -----------------------------
            clock.set(MONDAY_9PM + timedelta(hours=3, minutes=30))
            tuesday = [touch() for _ in range(2)]
            assert [r.ticket.code for r in tuesday] == ["A001", "A002"]  # numbers restart on the server's day
            fourth = serve("quay-1", ahead)
            fifth = serve("quay-3")
            tuesday_presses = {ahead.press("satisfied"), box_press(clock.now() - OFF)}  # stamped Tuesday 05:xx / Monday 19:xx
            stored(tuesday_presses)
            # A fence: one more press stored after the repeats were sent, so they were handled.
            publish_all(button_box, box_presses)
            fence = box_press(clock.now())
            stored({fence})
        finally:
            for device in (ahead, behind, kiosk):
                device.stop()

        ending = check_nothing_lost(service, msg_ids=monday_presses | tuesday_presses | {fence},
                                    idempotency_keys=[("device:kiosk-1", r.transaction) for r in monday + tuesday])
        rows = {row[0]: row[1:] for row in store.db.execute(
            "SELECT msg_id, ticket_id, day, counted, flag, device_at, pressed_at, received_at FROM ratings")}
        days = {msg_id: row[1] for msg_id, row in rows.items()}
        counted = {row[0]: row[1] for row in rows.values() if row[2] == 1}
        assert counted == {first: "2026-11-23", second: "2026-11-23", third: "2026-11-23",
                           fourth: "2026-11-24", fifth: "2026-11-24"}
        assert set(days[m] for m in monday_presses) == {"2026-11-23"}
        assert set(days[m] for m in tuesday_presses | {fence}) == {"2026-11-24"}
        # The device's time is kept as it was sent, and the press judged at the server's time.
        for msg_id in monday_presses | tuesday_presses:
            _ticket, _day, _counted, _flag, device_at, pressed_at, received_at = rows[msg_id]
            assert abs(datetime.fromisoformat(device_at.replace("Z", "+00:00"))
                       - datetime.fromisoformat(received_at.replace("Z", "+00:00"))) >= OFF - timedelta(minutes=1)
            assert pressed_at == received_at
        assert ending.counted == 5
        assert ending.flagged == {"already_rated": 2}  # the second press on `first`; the fence, on `fifth`
        by_day = service.stats_daily(ending.first_day, ending.last_day)
        assert [day["ratings"]["counted"] for day in by_day] == [3, 2]
        assert [day["tickets"]["issued"] for day in by_day] == [3, 2]
        assert by_day[0]["ratings"]["by_level"] == {"very_satisfied": 2, "satisfied": 0, "unsatisfied": 1}
        for day in by_day:
            first_day = datetime.fromisoformat(day["day"]).date()
            assert service.figures(first_day, first_day) == service.figures_from_history(first_day, first_day)
        assert store.reject_counts() == {}
