"""What a serving process sets for itself before it serves."""
from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
import urllib.request

import waitress

from queue_server import server as server_module


def test_a_serving_process_hands_the_gil_over_after_five_milliseconds(server, monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(server_module, "_serve", lambda *args: seen.setdefault("interval", sys.getswitchinterval()))
    before_interval, before_handler = sys.getswitchinterval(), signal.getsignal(signal.SIGTERM)
    sys.setswitchinterval(0.001)  # as a library might have left it
    try:
        server_module.run_http(server, "127.0.0.1", 0)
    finally:
        sys.setswitchinterval(before_interval)
        signal.signal(signal.SIGTERM, before_handler)
    assert seen["interval"] == server_module.GIL_SWITCH_INTERVAL_S == 0.005


def _blocking_app(inside: list[int], peak: list[int], lock: threading.Lock, release: threading.Event):
    def app(environ, start_response):
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        try:
            release.wait(5)
        finally:
            with lock:
                inside[0] -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return app


def test_the_request_gate_builds_at_most_its_limit_of_responses_at_once() -> None:
    inside, peak, lock, release = [0], [0], threading.Lock(), threading.Event()
    gate = server_module.RequestGate(_blocking_app(inside, peak, lock, release), limit=2)
    bodies: list[list[bytes]] = []
    threads = [threading.Thread(target=lambda: bodies.append(list(gate({}, lambda *a: None))))
               for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while peak[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the other four had time to get in, were they let
    assert inside[0] == 2
    release.set()
    for thread in threads:
        thread.join(5)
    assert peak[0] == 2
    assert bodies == [[b"ok"]] * 6


def test_signing_in_skips_the_gate_while_every_place_is_taken() -> None:
    inside, peak, lock, release = [0], [0], threading.Lock(), threading.Event()
    gate = server_module.RequestGate(_blocking_app(inside, peak, lock, release), limit=1,
                                     ungated=server_module.UNGATED_PATHS)
    held = threading.Thread(target=lambda: list(gate({"PATH_INFO": "/api/v1/counters/quay-1/next"}, lambda *a: None)))
    held.start()
    deadline = time.monotonic() + 5
    while inside[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    signing_in = threading.Thread(target=lambda: list(gate({"PATH_INFO": "/api/v1/login"}, lambda *a: None)))
    signing_in.start()
    while inside[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inside[0] == 2  # the sign-in is being built beside the request holding the only place
    other = threading.Thread(target=lambda: list(gate({"PATH_INFO": "/api/v1/stats/today"}, lambda *a: None)))
    other.start()
    time.sleep(0.1)
    assert inside[0] == 2  # anything else waits its turn
    release.set()
    for thread in (held, signing_in, other):
        thread.join(5)
    assert peak[0] == 2


def test_a_streamed_body_does_not_hold_a_place_of_the_gate() -> None:
    streaming = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def events():
            streaming.set()
            yield b"event: one\n\n"
            time.sleep(0.5)  # still streaming when the next request comes
            yield b"event: two\n\n"
        return events()

    gate = server_module.RequestGate(app, limit=1)
    stream = iter(gate({}, lambda *a: None))
    assert next(stream) == b"event: one\n\n"
    started = time.monotonic()
    second = gate({}, lambda *a: None)  # would wait forever if the open stream held the only place
    assert time.monotonic() - started < 0.4
    assert next(iter(second)) == b"event: one\n\n"


def test_serve_gives_waitress_the_gated_app_and_a_board_stream_leaves_room_for_requests(config, tmp_path, clock) -> None:
    """The real app behind waitress with one place: an open board stream, then /healthz answers."""
    one_place = config.model_copy(update={"server": config.server.model_copy(update={"request_concurrency": 1})})
    server = server_module.build(one_place, tmp_path, clock=clock)
    app = server_module.wsgi_app(server)
    assert isinstance(app, server_module.RequestGate) and app.limit == 1 and app.app is server.app
    assert app.ungated == server_module.UNGATED_PATHS == {"/api/v1/login"}
    served = waitress.create_server(app, host="127.0.0.1", port=0, threads=4, ident="motcua-test")
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    port = served.effective_port
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as board:
            board.sendall(b"GET /board/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"event: snapshot" in _read_until(board, b"event: snapshot")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                assert response.status == 200
                assert json.loads(response.read())["db"] == "ok"
    finally:
        hub = server.app.extensions.get("motcua.board_hub")
        if hub is not None:
            hub.close_all()
        served.close()
        thread.join(5)
        server.store.close()


def _read_until(connection: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received
