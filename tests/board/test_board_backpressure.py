"""Issue #9: what the server holds for a board stream stays bounded, whatever the board does.

A real waitress with the settings `motcua serve` uses (queue_server.server.waitress_options), the
real board hub, real sockets. Memory is what tracemalloc sees the server's Python side allocate
(waitress's buffers and the hub's queues are Python objects) while megabytes of events go by.
"""
from __future__ import annotations

import http.client
import json
import queue
import socket
import threading
import time
import tracemalloc

import pytest

from display_board import live
from display_board.live import END_OF_STREAM, BoardClient, format_event
from queue_server.domain.counters import Action
from queue_server.server import OUTBUF_HIGH_WATERMARK, waitress_options

from .conftest import LiveServer

EVENT_DATA = {"padding": "x" * 2000}  # about the size of a board's `today` event
EVENT_BYTES = len(json.dumps(EVENT_DATA))
STREAMED = 12 << 20  # waitress's default kept up to 16 MiB per stream: this shows it at once
PACE_EVERY = 50  # events between two short pauses of the broadcaster (a busy centre's pace, faster)


class ServedAsInProduction(LiveServer):
    """LiveServer with waitress configured as `motcua serve` configures it (fewer threads)."""

    def __init__(self, app, options: dict) -> None:
        super().__init__(app)
        self.options = options | {"threads": 8}

    def start(self) -> "ServedAsInProduction":
        import waitress

        self._stop.clear()
        self._server = waitress.create_server(self.app, host="127.0.0.1", port=self.port, **self.options)
        self._thread = threading.Thread(target=self._serve, name=f"waitress-{self.port}", daemon=True)
        self._thread.start()
        return self


@pytest.fixture
def production_like(server, board_app):
    running = ServedAsInProduction(board_app, waitress_options(server)).start()
    yield running
    running.stop()


def open_board(port: int, receive_buffer: int | None = None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    sock = socket.socket()
    if receive_buffer:  # before connect: a small window, so the kernel holds little for a stalled reader
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    connection.sock = sock
    connection.request("GET", "/board/stream", headers={"Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200
    return connection, response


def read_event(response: http.client.HTTPResponse) -> tuple[str | None, str | None]:
    """The next event's name and data line, skipping the retry line and heartbeats."""
    name = data = None
    while True:
        line = response.readline()
        if not line:
            return None, None  # the stream ended
        line = line.rstrip(b"\n").decode()
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
        elif line == "" and name is not None:
            return name, data


def wait_until(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def hub_of(app) -> live.BoardHub:
    return app.extensions["motcua.board_hub"]


def test_a_board_client_is_bounded_in_bytes_and_freed_when_dropped(monkeypatch) -> None:
    monkeypatch.setattr(live, "CLIENT_QUEUE_BYTES", 10_000)
    client = BoardClient()
    event = b"x" * 3000
    assert all(client.offer(event) for _ in range(3)) and client.queued_bytes == 9000
    assert client.take_ready(timeout=0, max_bytes=3000) == (event, False) and client.queued_bytes == 6000
    assert client.offer(event) and not client.offer(event)  # 12,000 bytes would be queued: dropped
    assert client.dropped and client.queued_bytes == 0
    assert client.take_ready(timeout=0) == (b"", True)  # what it had not taken is gone; the stream ends
    assert not client.offer(b"more") and client.events.empty()


def test_a_board_takes_what_is_queued_in_one_write_and_ends_after_it_when_dropped() -> None:
    client = BoardClient()
    events = [format_event("queue", {"field": "dat-dai", "waiting": n}) for n in range(5)]
    for event in events:
        assert client.offer(event)
    assert client.take_ready(timeout=0, max_bytes=2 * len(events[0])) == (events[0] + events[1], False)
    assert client.take_ready(timeout=0) == (b"".join(events[2:]), False) and client.queued_bytes == 0
    with pytest.raises(queue.Empty):
        client.take_ready(timeout=0)
    client.offer(events[0])
    with client._lock:  # as the hub's end() does, but with one event left before the end
        client.dropped = True
        client.events.put_nowait(END_OF_STREAM)
    assert client.take_ready(timeout=0) == (events[0], True)


def test_waitress_is_told_to_hold_little_per_connection(server) -> None:
    options = waitress_options(server)
    assert options["outbuf_high_watermark"] == OUTBUF_HIGH_WATERMARK <= 1 << 20
    assert options["threads"] == server.config.server.threads


def test_a_board_that_keeps_up_costs_no_more_memory_however_long_it_stays(production_like, board_app) -> None:
    """Regression: waitress kept every byte a stream had sent in one buffer until 16 MiB had gone
    into it, so each open board grew the server by up to 16 MiB (issue #9)."""
    # A small window, so that the kernel takes each event only as the board reads it and
    # waitress buffers the rest, as it does for a board across a LAN.
    connection, response = open_board(production_like.port, receive_buffer=4096)
    try:
        assert read_event(response)[0] == "snapshot"
        hub = hub_of(board_app)
        events = STREAMED // EVENT_BYTES + 1
        received = {"bytes": 0, "events": 0}

        def reader() -> None:
            while received["events"] < events:
                name, data = read_event(response)
                if name is None:
                    return
                if name == "padding":
                    received["bytes"] += len(data)
                    received["events"] += 1

        reading = threading.Thread(target=reader, daemon=True)
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            reading.start()
            # First an event of 12 KB, as a 30-counter centre's snapshot is: waitress then moves
            # the connection from its 8 KiB string buffer to a BytesIO, the buffer that kept
            # everything sent after it (so does any send the socket takes only in part).
            hub.broadcast("padding", {"padding": "s" * 12_000})
            for number in range(events - 1):
                hub.broadcast("padding", EVENT_DATA)
                if number % PACE_EVERY == 0:
                    time.sleep(0.02)  # 5 MB/s, ten times a busy centre: the reader keeps up
            reading.join(timeout=60)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert received["events"] == events and received["bytes"] >= STREAMED - events  # every event arrived
        assert hub.client_count == 1
        assert peak - before < 4 << 20, f"{(peak - before) / 2**20:.1f} MiB held while {STREAMED >> 20} MiB streamed"
    finally:
        connection.close()


def test_a_board_that_stops_reading_is_cut_off_with_bounded_memory_and_comes_back(production_like, board_app, service) -> None:
    service.issue_ticket("dat-dai")
    stalled_connection, stalled = open_board(production_like.port, receive_buffer=4096)
    healthy_connection, healthy = open_board(production_like.port)
    try:
        assert read_event(stalled)[0] == "snapshot"  # then this board reads nothing more for a while
        assert read_event(healthy)[0] == "snapshot"
        hub = hub_of(board_app)
        wait_until(lambda: hub.client_count == 2, "both boards attached")
        healthy_events = {"padding": 0}

        def keep_reading() -> None:
            while True:
                name, _ = read_event(healthy)
                if name is None or name == "call":
                    return
                if name == "padding":
                    healthy_events["padding"] += 1

        reading = threading.Thread(target=keep_reading, daemon=True)
        reading.start()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            broadcasts = 0
            for _ in range(STREAMED // EVENT_BYTES):
                hub.broadcast("padding", EVENT_DATA)
                broadcasts += 1
                if broadcasts % PACE_EVERY == 0:
                    time.sleep(0.02)  # the healthy board keeps up
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # The stalled board was dropped: its queue was emptied, not kept.
        stalled_clients = [client for client in list(hub._clients) if client.dropped]
        assert len(stalled_clients) == 1 and stalled_clients[0].queued_bytes == 0
        assert peak - before < 5 << 20, f"{(peak - before) / 2**20:.1f} MiB held for {STREAMED >> 20} MiB broadcast"
        # The healthy board was not held back and is still attached.
        service.counter_action("quay-1", Action.NEXT, clerk_id="x")
        reading.join(timeout=30)
        assert not reading.is_alive() and healthy_events["padding"] == broadcasts
        # The stalled board reads again: what was in flight, then the end of its stream.
        while read_event(stalled)[0] is not None:
            pass
        wait_until(lambda: hub.client_count == 1, "the stalled board to be detached")
        # EventSource reconnects and starts again from the whole state.
        again_connection, again = open_board(production_like.port)
        try:
            name, data = read_event(again)
            assert name == "snapshot"
            assert json.loads(data)["calls"][0]["ticket"] == "A001"
        finally:
            again_connection.close()
    finally:
        stalled_connection.close()
        healthy_connection.close()
