"""GET /board/stream: a snapshot first, then each committed change pushed (no polling), today's
figures at most once a second with a trailing update, a heartbeat, one bounded queue per board."""
from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable

import pytest
import requests

from display_board import live
from display_board.live import BoardHub, today_payload
from queue_server.domain.counters import Action

from .conftest import LiveServer

CLERK = "nguyen-van-an"


class EventReader:
    """Server-sent events out of a stream of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.retry_ms: int | None = None
        self.comments: list[str] = []

    def _block(self) -> str:
        while b"\n\n" not in self._buffer:
            self._buffer += next(self._chunks)
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        return block.decode()

    def read(self) -> tuple[str | None, object]:
        """The next block: (name, data) of an event, or (None, None) for a comment or retry line."""
        name, data = None, None
        for line in self._block().split("\n"):
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line.startswith("retry: "):
                self.retry_ms = int(line[len("retry: "):])
            elif line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
        return name, data

    def next(self) -> tuple[str, object]:
        """The next event, skipping comments."""
        while True:
            name, data = self.read()
            if name is not None:
                return name, data

    def until(self, wanted: str, limit: int = 50) -> object:
        for _ in range(limit):
            name, data = self.next()
            if name == wanted:
                return data
        raise AssertionError(f"no {wanted!r} event in {limit} events")


def open_stream(app):
    response = app.test_client().get("/board/stream", buffered=False)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    return response, EventReader(response.response)


def hub_of(app) -> BoardHub:
    return app.extensions["motcua.board_hub"]


def test_a_board_starts_with_the_whole_state(board_app, service) -> None:
    service.issue_ticket("dat-dai")
    service.issue_ticket("ho-tich", "elderly")
    response, events = open_stream(board_app)
    try:
        name, snapshot = events.next()
        assert name == "snapshot" and events.retry_ms == 300
        assert snapshot["site"]["name"]["vi"].startswith("Trung tâm")
        assert [f["letter"] for f in snapshot["fields"]] == ["A", "B", "C"]
        assert [c["counter"] for c in snapshot["counters"]] == ["quay-1", "quay-2", "quay-3"]
        assert {c["number"] for c in snapshot["counters"]} == {1, 2, 3}
        queues = {q["field"]: q for q in snapshot["queues"]}
        assert (queues["dat-dai"]["waiting"], queues["ho-tich"]["priority_waiting"], queues["kinh-doanh"]["waiting"]) == (1, 1, 0)
        assert [level["id"] for level in snapshot["rating_levels"]] == ["very_satisfied", "satisfied", "unsatisfied"]
        assert snapshot["calls"] == []
        assert snapshot["today"] == today_payload(service)
        assert snapshot["today"]["tickets"]["issued"] == 2
    finally:
        response.close()


def test_a_call_is_pushed_with_its_counter_and_queue(board_app, service) -> None:
    service.issue_ticket("dat-dai")
    service.issue_ticket("dat-dai")
    response, events = open_stream(board_app)
    try:
        events.until("snapshot")
        service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
        counter = events.until("counter")
        assert (counter["counter"], counter["ticket"], counter["ticket_field"], counter["clerk_name"]) == ("quay-1", "A001", "dat-dai", "Nguyễn Văn An")
        assert counter["ticket_called_at"] and "tickets" not in counter
        call = events.until("call")
        assert {key: call[key] for key in ("ticket", "counter", "counter_number", "field", "repeat")} == {
            "ticket": "A001", "counter": "quay-1", "counter_number": 1, "field": "dat-dai", "repeat": False,
        }
        queue = events.until("queue")
        assert (queue["field"], queue["waiting"]) == ("dat-dai", 1)

        service.counter_action("quay-1", Action.RECALL, clerk_id=CLERK)
        recall = events.until("call")
        assert (recall["ticket"], recall["repeat"]) == ("A001", True)
        assert recall["id"] != call["id"], "a recall is a new announcement"
    finally:
        response.close()


def test_a_live_counter_event_equals_the_counter_read_back(board_app, service, clock) -> None:
    """The change names the ticket's field and times itself (no listener reads the ticket back):
    after every kind of action and a press, the event equals what a snapshot reads back."""
    service.issue_ticket("dat-dai")
    service.issue_ticket("dat-dai")
    response, events = open_stream(board_app)
    try:
        events.until("snapshot")
        for action in (Action.NEXT, Action.RECALL, Action.START, Action.FINISH, Action.NEXT, Action.NO_SHOW):
            clock.advance(minutes=1)
            service.counter_action("quay-1", action, clerk_id=CLERK)
            pushed = events.until("counter")
            assert pushed == live.counter_payload(service, service.counter_view("quay-1")), action
        service.issue_ticket("dat-dai")
        service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
        events.until("counter")
        service.counter_action("quay-1", Action.FINISH)
        assert events.until("counter")["status"] == "rating"
        service.record_rating("quay-1", "satisfied")
        pushed = events.until("counter")
        assert pushed["status"] != "rating"
        assert pushed == live.counter_payload(service, service.counter_view("quay-1"))
    finally:
        response.close()


def test_a_reconnecting_board_gets_the_last_calls_newest_first(board_app, service, clock) -> None:
    for field in ("dat-dai", "dat-dai", "ho-tich"):
        service.issue_ticket(field)
    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
    clock.advance(minutes=1)
    second = service.counter_action("quay-2", Action.NEXT, clerk_id="tran-thi-binh")["ticket"]
    clock.advance(minutes=1)
    service.counter_action("quay-1", Action.RECALL, clerk_id=CLERK)
    response, events = open_stream(board_app)
    try:
        snapshot = events.until("snapshot")
        assert [(c["ticket"], c["counter_number"], c["repeat"]) for c in snapshot["calls"]] == [("A001", 1, True), (second, 2, False)]
        serving = {c["counter"]: c["ticket"] for c in snapshot["counters"]}
        assert serving == {"quay-1": "A001", "quay-2": second, "quay-3": None}
    finally:
        response.close()


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_today_is_sent_at_most_once_a_second_and_once_more_after_the_last_change(board_app, service) -> None:
    monotonic = FakeMonotonic()
    board_app.extensions["motcua.board_hub"] = BoardHub(service, today_min_interval_s=1.0, monotonic=monotonic)
    response, events = open_stream(board_app)
    try:
        events.until("snapshot")
        service.issue_ticket("dat-dai")
        first = events.until("today")  # the first change is sent at once
        assert first["tickets"]["issued"] == 1
        for _ in range(5):
            service.issue_ticket("dat-dai")
        # The hub's clock stands still, so no second `today` may come however long one waits:
        # what the burst queued is its five queue events, nothing else.
        assert [events.next()[0] for _ in range(5)] == ["queue"] * 5
        monotonic.now += 1.0  # a second later the figures thread sends the final figures
        last = events.until("today")
        assert last["tickets"]["issued"] == 6 == service.stats_today()["tickets"]["issued"]
    finally:
        response.close()


def test_at_midnight_boards_get_the_new_day_without_any_change(board_app, service, clock, monkeypatch) -> None:
    monkeypatch.setattr(live, "DAY_CHECK_S", 0.05)
    service.issue_ticket("dat-dai")
    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
    service.issue_ticket("dat-dai")
    response, events = open_stream(board_app)
    try:
        assert events.until("snapshot")["today"]["day"] == "2026-11-23"
        clock.advance(days=1)  # Tuesday: nobody has done anything yet
        fresh = events.until("snapshot")
        assert fresh["today"]["day"] == "2026-11-24" and fresh["today"]["tickets"]["issued"] == 0
        assert fresh["calls"] == [] and {q["waiting"] for q in fresh["queues"]} == {0}
    finally:
        response.close()


def test_a_departed_board_is_unsubscribed(board_app, service) -> None:
    listeners_before = len(service._listeners)  # the service's own list: nothing else shows it
    response, events = open_stream(board_app)
    events.until("snapshot")
    hub = hub_of(board_app)
    assert hub.client_count == 1 and len(service._listeners) == listeners_before + 1
    response.close()  # the generator's finally: block runs
    assert hub.client_count == 0 and len(service._listeners) == listeners_before
    service.issue_ticket("dat-dai")  # nobody listening: nothing breaks


def test_a_board_that_falls_behind_is_dropped_not_waited_for(board_app, service, monkeypatch) -> None:
    monkeypatch.setattr(live, "CLIENT_QUEUE_SIZE", 3)
    response, events = open_stream(board_app)
    try:
        events.until("snapshot")
        hub = hub_of(board_app)
        for _ in range(4):
            service.issue_ticket("dat-dai")  # each puts a queue event (and figures): more than 3
        with pytest.raises(StopIteration):  # the stream ends; EventSource will reconnect for a new snapshot
            for _ in range(5):
                events.next()
        assert hub.client_count == 0
    finally:
        response.close()


def test_many_boards_each_get_every_call(board_app, service) -> None:
    service.issue_ticket("ho-tich")
    streams = [open_stream(board_app) for _ in range(5)]
    try:
        for _, events in streams:
            events.until("snapshot")
        service.counter_action("quay-3", Action.NEXT, clerk_id="someone")
        for _, events in streams:
            assert events.until("call")["ticket"] == "B001"
    finally:
        for response, _ in streams:
            response.close()
    assert hub_of(board_app).client_count == 0


def test_over_real_http_with_heartbeat_and_disconnect(live: LiveServer, service) -> None:
    service.issue_ticket("kinh-doanh")
    with requests.get(f"{live.url}/board/stream", stream=True, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = EventReader(response.iter_content(chunk_size=None))
        events.until("snapshot")
        # A call from another thread (a clerk's request) reaches the open stream.
        threading.Thread(target=service.counter_action, args=("quay-3", Action.NEXT), kwargs={"clerk_id": "x"}).start()
        assert events.until("call")["ticket"] == "C001"
        # Idle: the heartbeat comment (every 0.25 s in these tests) keeps the connection in use.
        for _ in range(10):
            if events.read() == (None, None) and "heartbeat" in events.comments:
                break
        assert "heartbeat" in events.comments
    hub = live.app.extensions["motcua.board_hub"]
    deadline = time.monotonic() + 10
    while hub.client_count and time.monotonic() < deadline:
        time.sleep(0.05)  # waitress notices at the second or third write after the close (heartbeats)
    assert hub.client_count == 0


def test_a_press_reaches_the_boards_at_once_with_the_figures_it_makes(board_app, service, clock) -> None:
    monotonic = FakeMonotonic()  # frozen: no `today` event can come after the first one
    board_app.extensions["motcua.board_hub"] = BoardHub(service, today_min_interval_s=1.0, monotonic=monotonic)
    service.issue_ticket("dat-dai")
    service.counter_action("quay-1", Action.NEXT, clerk_id=CLERK)
    clock.advance(minutes=5)
    service.counter_action("quay-1", Action.FINISH)
    response, events = open_stream(board_app)
    try:
        events.until("snapshot")
        service.issue_ticket("ho-tich")
        before = events.until("today")
        assert before["ratings"]["counted"] == 0
        service.record_rating("quay-1", "unsatisfied", msg_id="rt:1:1")
        counted = events.until("ratings")
        assert counted["through"] > before["ratings_through"]
        assert counted["ratings"] == service.stats_today()["ratings"]
        assert counted["ratings"]["counted"] == 1 and counted["ratings"]["satisfaction_pct"] == 0.0
        service.record_rating("quay-1", "very_satisfied", msg_id="rt:1:2")  # the ticket is rated already
        flagged = events.until("ratings")
        assert flagged["through"] > counted["through"]
        assert flagged["ratings"] == service.stats_today()["ratings"]
        assert flagged["ratings"]["counted"] == 1 and flagged["ratings"]["flagged"] == 1
        monotonic.now += 1.0  # the day's figures, when they come, agree and say they include both
        final = events.until("today")
        assert final["ratings"] == flagged["ratings"] and final["ratings_through"] == flagged["through"]
    finally:
        response.close()


def numbers(write: bytes) -> list[int]:
    return [json.loads(line[6:])["n"] for line in write.decode().split("\n") if line.startswith("data: ")]


def test_events_within_the_write_gap_go_out_together_and_a_quiet_board_writes_at_once(service) -> None:
    """A board writes at most once per WRITE_GAP_S: the first event after a quiet spell at once,
    those that follow within the gap in one write at its end (each write wakes the server's loop)."""
    hub = BoardHub(service)
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        hub.broadcast("queue", {"n": 3})  # arrives while the board waits out its gap
        hub.broadcast("queue", {"n": 4})
        now[0] += seconds

    writes = live.stream(hub, heartbeat_s=5, retry_ms=300, write_gap_s=0.02, monotonic=lambda: now[0], sleep=sleep)
    try:
        assert b"snapshot" in next(writes)
        hub.broadcast("queue", {"n": 1})
        assert numbers(next(writes)) == [1] and slept == []  # at once
        now[0] += 0.005
        hub.broadcast("queue", {"n": 2})
        together = next(writes)  # 5 ms after the last write: waits the other 15 ms, then all three
        assert slept == [pytest.approx(0.015)]
        assert numbers(together) == [2, 3, 4]
        now[0] += 1.0
        hub.broadcast("queue", {"n": 5})
        assert numbers(next(writes)) == [5] and len(slept) == 1  # a quiet second later: at once again
    finally:
        writes.close()
    assert hub.client_count == 0


def test_a_busy_board_waits_out_its_gap_before_it_looks_at_its_queue(service) -> None:
    """On a busy day a board's thread wakes once per write: after a write it sleeps out the gap
    first, and the events that came meanwhile are already queued when it looks (rather than
    waking for the first of them, then again at the end of the gap)."""
    hub = BoardHub(service)
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        hub.broadcast("queue", {"n": len(slept) * 10})  # the day goes on while the board sleeps
        hub.broadcast("queue", {"n": len(slept) * 10 + 1})
        now[0] += seconds

    writes = live.stream(hub, heartbeat_s=5, retry_ms=300, write_gap_s=0.02, monotonic=lambda: now[0], sleep=sleep)
    try:
        assert b"snapshot" in next(writes)
        hub.broadcast("queue", {"n": 1})
        assert numbers(next(writes)) == [1] and slept == []
        # Nothing queued yet: the board sleeps the whole gap, then writes what came meanwhile.
        assert numbers(next(writes)) == [10, 11] and slept == [pytest.approx(0.02)]
        assert numbers(next(writes)) == [20, 21] and slept == [pytest.approx(0.02)] * 2
    finally:
        writes.close()
    assert hub.client_count == 0


def test_todays_figures_for_the_boards_are_read_after_the_devices_messages_waiting(service, monkeypatch) -> None:
    """The hub's figures thread gives way to presses and ticket requests waiting to be applied
    (queue_server/device_first.py) before it reads today's figures."""
    asked = threading.Event()
    give_way = service.device_first.give_way
    monkeypatch.setattr(service.device_first, "give_way", lambda: (asked.set(), give_way())[1])
    hub = BoardHub(service, today_min_interval_s=0.0)
    board = hub.attach()
    try:
        service.issue_ticket("dat-dai")
        deadline = time.monotonic() + 10
        sent: list[bytes] = []
        while not any(b"event: today" in write for write in sent) and time.monotonic() < deadline:
            try:
                sent.append(board.take_ready(timeout=0.2)[0])
            except queue.Empty:
                pass
        assert any(b"event: today" in write for write in sent)
        assert asked.is_set()
    finally:
        hub.detach(board)
