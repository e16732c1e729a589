"""Live state for boards: the full snapshot, and the service's changes fanned out to each connected board.

One `BoardHub` per app. It listens to the service only while at least one board is
connected. Each board gets its own bounded queue; the service's listener only puts small,
already-built payloads on those queues (it runs in the clerk's request thread, right after the
commit). Today's figures are recomputed by the hub's own thread, at most once a second however
many boards and changes there are, and always once more after the last change (a trailing
edge), so a quiet board ends up with the final figures.

A board whose queue fills up (a stalled connection) is dropped rather than slowing anyone:
its queue is emptied at once, its stream ends, EventSource reconnects and the new connection
starts with a full snapshot. The queue is bounded in events and in bytes, so what the server
holds for a board that stopped reading is bounded too (with waitress's own buffer for the
connection: see queue_server/server.py, OUTBUF_HIGH_WATERMARK).
At local midnight every board is sent a fresh snapshot (new day: empty queues and figures).
"""
from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from queue_server.domain.figures import with_press
from queue_server.domain.tickets import Ticket
from queue_server.service import Change, QueueService

log = logging.getLogger(__name__)

TODAY_MIN_INTERVAL_S = 1.0
DAY_CHECK_S = 30.0  # how soon after local midnight boards get the new day's (empty) state
CLIENT_QUEUE_SIZE = 1000
CLIENT_QUEUE_BYTES = 1 << 20  # a board this far behind (besides what its connection holds) is dropped
# At most about this much of a board's queued events goes out in one write. With one write per
# WRITE_GAP_S, it is also the fastest a board is fed: 128 KiB per 20 ms, 6.4 MB/s, ten times a
# busy centre's stream; a board whose events come faster for long falls behind and is dropped.
WRITE_BYTES = 128 * 1024
# At most one write per board this often: the first event after a quiet spell goes out at once,
# events that follow within the gap go out together at its end. Each write wakes the HTTP
# server's loop, which looks at every connection; under a busy day's stream of events, one
# write per event for each of ten boards was a seventh of the server's time.
WRITE_GAP_S = 0.02
LAST_CALLS = 8
# Changes after which today's figures may differ.
TODAY_KINDS = frozenset({"ticket_issued", "counter", "call", "rating", "dossier"})


def format_event(event: str, data: object) -> bytes:
    """One server-sent event; JSON keeps it on one `data:` line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def today_payload(svc: QueueService) -> dict:
    """The board's share of GET /api/v1/stats/today (same numbers, without per-counter and per-clerk
    detail), and `ratings_through`: the newest rating they include, so that a board can tell
    whether a `ratings` event is news to it."""
    figures, newest_rating_id = svc.stats_today_marked()
    keep = ("day", "generated_at", "tickets", "ratings", "dossiers", "grading_766")
    return {key: figures[key] for key in keep} | {"ratings_through": newest_rating_id}


def counter_payload(svc: QueueService, view: dict) -> dict:
    """A counter's view plus what a display shows of its ticket: field and times."""
    payload = {key: value for key, value in view.items() if key not in ("tickets", "action")}
    if "ticket_field" in view:
        return payload  # a live change names them already (QueueService._counter_change)
    payload.update(ticket_field=None, ticket_called_at=None, ticket_last_called_at=None, ticket_started_at=None)
    if view.get("ticket_id"):
        ticket = svc.store.get_ticket(view["ticket_id"])
        if ticket is not None:
            payload.update(
                ticket_field=ticket.field_id,
                ticket_called_at=ticket.called_at.isoformat() if ticket.called_at else None,
                ticket_last_called_at=ticket.last_called_at.isoformat() if ticket.last_called_at else None,
                ticket_started_at=ticket.started_at.isoformat() if ticket.started_at else None,
            )
    return payload


def call_payload(svc: QueueService, data: dict, ticket: Ticket | None = None) -> dict:
    """A call as boards use it: the field, and an id naming this very announcement.

    The id is the ticket and its call count (calls and recalls both count), so a recall is a
    new announcement even within the same clock tick, and the same call seen in a snapshot and
    in the live stream is recognised as one.
    """
    data = dict(data)
    if ticket is None and "call_count" in data:  # a live call names them (QueueService.counter_action)
        call_count, field_id = data.pop("call_count"), data["field"]
    else:
        ticket = ticket or svc.store.get_ticket(data["ticket_id"])
        call_count, field_id = (ticket.call_count, ticket.field_id) if ticket else (0, None)
    return {**data, "id": f"{data['ticket_id']}#{call_count}", "field": field_id}


def last_calls(svc: QueueService, limit: int = LAST_CALLS) -> list[dict]:
    """Today's most recent calls (a recall counts as the latest call of its ticket), newest first."""
    today = svc.today()
    called = [x for x in svc.store.tickets_between(today, today) if x.called_at is not None and x.counter_id]
    called.sort(key=lambda x: x.last_called_at or x.called_at, reverse=True)
    calls = []
    for ticket in called[:limit]:
        counter = svc.config.counter(ticket.counter_id)
        at = (ticket.last_called_at or ticket.called_at).isoformat()
        calls.append(call_payload(svc, {
            "ticket": ticket.code, "ticket_id": ticket.id, "counter": ticket.counter_id,
            "counter_number": counter.number if counter else None, "at": at, "repeat": ticket.call_count > 1,
        }, ticket))
    return calls


def snapshot(svc: QueueService) -> dict:
    """Everything a board shows, at once: sent first on every (re)connection."""
    config = svc.config
    return {
        "server_time": svc.now().isoformat(),
        "site": {"id": config.site.id, "name": config.site.name.model_dump(), "timezone": config.site.timezone},
        "fields": [
            {"id": f.id, "letter": f.letter, "name": f.name.model_dump(), "target_wait_min": f.target_wait_min, "closed": f.closed}
            for f in config.fields
        ],
        "rating_levels": [
            {"id": level.id, "name": level.name.model_dump(), "colour": level.colour, "satisfied": level.satisfied}
            for level in config.rating.levels
        ],
        "counters": [counter_payload(svc, svc.counter_view(c.id)) for c in config.counters],
        "queues": [svc.queue_state(f.id) for f in config.fields],
        "calls": last_calls(svc),
        "today": today_payload(svc),
    }


END_OF_STREAM = b""  # put on a client's queue to end its stream


@dataclass(eq=False)
class BoardClient:
    """One connected board: its queue of encoded events (at most `CLIENT_QUEUE_SIZE` events and
    `CLIENT_QUEUE_BYTES` bytes), and whether the hub dropped it."""

    # Bounded by offer() (under _lock); a SimpleQueue puts and gets in C, without the Condition
    # a Queue notifies on every put: every event goes to every board.
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    dropped: bool = False
    queued_bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def offer(self, event: bytes) -> bool:
        """Queue an event; False when the board is (now or already) dropped."""
        with self._lock:
            if self.dropped:
                return False
            if self.events.qsize() < CLIENT_QUEUE_SIZE and self.queued_bytes + len(event) <= CLIENT_QUEUE_BYTES:
                self.events.put_nowait(event)
                self.queued_bytes += len(event)
                return True
        log.warning("a board fell %d events or %d KiB behind; its stream is ended so it reconnects",
                    CLIENT_QUEUE_SIZE, CLIENT_QUEUE_BYTES // 1024)
        self.end()
        return False

    def take_ready(self, timeout: float, max_bytes: int = WRITE_BYTES) -> tuple[bytes, bool]:
        """The next event and every one already queued behind it (up to about `max_bytes`), as one
        write, and whether the stream ends after them (the board was dropped). Under a burst a
        board's thread wakes and writes once for many events, not once per event. Raises
        queue.Empty after `timeout` seconds with nothing queued."""
        first = self.events.get(timeout=timeout)
        if first == END_OF_STREAM:
            return b"", True
        events, size, ended = [first], len(first), False
        while size < max_bytes:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event == END_OF_STREAM:
                ended = True
                break
            events.append(event)
            size += len(event)
        with self._lock:
            self.queued_bytes -= size
        return b"".join(events), ended

    def end(self) -> None:
        """Drop the board: what it has not taken is freed now, and its stream ends at its next take."""
        with self._lock:
            self.dropped = True
            while True:
                try:
                    self.events.get_nowait()
                except queue.Empty:
                    break
            self.queued_bytes = 0
            self.events.put_nowait(END_OF_STREAM)


class BoardHub:
    def __init__(self, svc: QueueService, *, today_min_interval_s: float = TODAY_MIN_INTERVAL_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.service = svc
        self.today_min_interval_s = today_min_interval_s
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._clients: set[BoardClient] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None
        self._today_dirty = False
        self._today_sent_at = -math.inf
        self._day_shown: str | None = None
        # The rating figures last sent, and the newest rating in them: a press is added to them
        # and sent at once, rather than waiting up to a second for the whole day's figures.
        self._ratings_sent: dict | None = None
        self._ratings_through = 0

    # --- boards come and go ---------------------------------------------------------------

    def attach(self) -> BoardClient:
        client = BoardClient()
        with self._cond:
            self._clients.add(client)
            if self._unsubscribe is None:
                self._unsubscribe = self.service.subscribe(self._on_change)
            if self._thread is None:
                self._day_shown = self.service.today().isoformat()
                self._thread = threading.Thread(target=self._today_loop, name="board-today", daemon=True)
                self._thread.start()
        return client

    def detach(self, client: BoardClient) -> None:
        leaving: threading.Thread | None = None
        with self._cond:
            self._clients.discard(client)
            if not self._clients:
                if self._unsubscribe is not None:
                    self._unsubscribe()
                    self._unsubscribe = None
                # The figures thread is told to leave (a later board starts a new one) and is
                # waited for: nothing of the hub may still be reading the database after the
                # last board has gone (a store closed under a running query crashes SQLite).
                leaving, self._thread = self._thread, None
            self._cond.notify_all()
        if leaving is not None and leaving is not threading.current_thread():
            leaving.join(timeout=30)

    @property
    def client_count(self) -> int:
        with self._cond:
            return len(self._clients)

    def close_all(self) -> None:
        """End every stream now (server shutdown): each board will reconnect."""
        with self._cond:
            clients = list(self._clients)
        for client in clients:
            client.end()

    # --- changes in, events out -------------------------------------------------------------

    def broadcast(self, event: str, data: object) -> None:
        encoded = format_event(event, data)
        with self._cond:
            clients = list(self._clients)
        for client in clients:
            client.offer(encoded)

    def _on_change(self, change: Change) -> None:
        if change.kind == "counter":
            self.broadcast("counter", counter_payload(self.service, change.data))
        elif change.kind == "call":
            self.broadcast("call", call_payload(self.service, change.data))
        elif change.kind == "queue":
            self.broadcast("queue", change.data)
        elif change.kind == "rating":
            self._add_press(change.data)
        if change.kind in TODAY_KINDS:
            with self._cond:
                if not self._today_dirty:  # the figures thread is woken once per round, not per change
                    self._today_dirty = True
                    self._cond.notify_all()

    def _add_press(self, rating: dict) -> None:
        with self._cond:
            if self._ratings_sent is None or rating["id"] <= self._ratings_through:
                return  # no figures sent yet, or the press is in them already
            self._ratings_sent = with_press(
                self.service.config, self._ratings_sent, rating["level"], rating["counted"], rating["flag"]
            )
            self._ratings_through = rating["id"]
            # Under the lock, so two presses reach every board in the order they were added.
            self.broadcast("ratings", {"ratings": self._ratings_sent, "through": self._ratings_through})

    def _today_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._thread is not threading.current_thread():
                        return  # the last board left (see detach)
                    if self._today_dirty:
                        wait_s = self._today_sent_at + self.today_min_interval_s - self._monotonic()
                        if wait_s <= 0:
                            break
                        self._cond.wait(wait_s)
                    else:
                        self._cond.wait(DAY_CHECK_S)
                        if self.service.today().isoformat() != self._day_shown:
                            self._today_dirty = True  # midnight: nothing changed, yet everything did
                self._today_dirty = False
                self._today_sent_at = self._monotonic()
            # Presses and ticket requests waiting to be applied go first: these figures can wait
            # a moment (queue_server/device_first.py), a press already goes out on its own.
            self.service.device_first.give_way()
            try:
                if self.service.today().isoformat() != self._day_shown:
                    state = snapshot(self.service)  # a new day: new queues, figures and calls
                    self._day_shown = state["today"]["day"]
                    self.broadcast("snapshot", state)
                    continue
                figures = today_payload(self.service)
                self._day_shown = figures["day"]
            except Exception:  # reported; the next change tries again
                log.exception("today's figures for the boards failed")
                continue
            with self._cond:
                if figures["ratings_through"] < self._ratings_through:
                    # Presses already sent were committed after these figures were read: they
                    # would go backwards. The next round includes them.
                    self._today_dirty = True
                    continue
                self._ratings_sent = figures["ratings"]
                self._ratings_through = figures["ratings_through"]
                self.broadcast("today", figures)


def stream(hub: BoardHub, *, heartbeat_s: float, retry_ms: int, write_gap_s: float = WRITE_GAP_S,
           monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Iterator[bytes]:
    """A board's event stream: snapshot first, then changes, with a comment as heartbeat.

    The board is attached before the snapshot is built, so no change falls between the two
    (a change may arrive twice; every event replaces state, so that is harmless, and calls
    carry an id the board de-duplicates). `finally` detaches it when the connection ends.
    """
    client = hub.attach()
    try:
        yield f"retry: {retry_ms}\n".encode() + format_event("snapshot", snapshot(hub.service))
        written_at = -math.inf
        while not client.dropped:
            # The gap is waited out before looking at the queue, not after the first event: on a
            # busy day the events are already there when it ends, and the thread wakes once per
            # write instead of twice (once for the event, once more for the end of the gap).
            early_s = written_at + write_gap_s - monotonic()
            if early_s > 0:
                sleep(early_s)  # what comes meanwhile goes out in one write
            try:
                events, ended = client.take_ready(timeout=heartbeat_s)
            except queue.Empty:
                yield b": heartbeat\n\n"  # keeps proxies open and finds departed boards
                continue
            written_at = monotonic()
            if events:
                yield events
            if ended:
                break
    finally:
        hub.detach(client)

