"""Wiring: config + store + service + Flask app, and the production WSGI server (waitress)."""
from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from .alerts_runner import AlertRunner
from .api import MAX_IMPORT_BODY, create_app
from .config import Config
from .domain.timeutil import Clock
from .service import QueueService
from .store import Store

log = logging.getLogger(__name__)

DATABASE_NAME = "motcua.sqlite3"


def secret_key(data_dir: Path) -> str:
    """MOTCUA_SECRET_KEY from the environment, else a random key kept (0600) in the data dir."""
    from_env = os.environ.get("MOTCUA_SECRET_KEY")
    if from_env:
        return from_env
    path = data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


@dataclass
class Server:
    config: Config
    store: Store
    service: QueueService
    app: Flask


def build(config: Config, data_dir: Path, clock: Clock | None = None, mqtt_status=None) -> Server:
    store = Store(data_dir / DATABASE_NAME)
    svc = QueueService(config, store, clock)
    app = create_app(svc, secret_key=secret_key(data_dir), mqtt_status=mqtt_status)
    return Server(config, store, svc, app)


@dataclass
class MqttSide:
    """The broker motcua runs (when embedded) and the server's link to whichever broker is used."""

    broker: object | None = None
    link: object | None = None
    port: int | None = None
    protocol: object | None = None

    def stop(self) -> None:
        if self.link is not None:
            self.link.stop()
        if self.broker is not None:
            self.broker.stop()


def port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_mqtt(server: Server, data_dir: Path, *, listen_host: str | None = None, port: int | None = None) -> MqttSide:
    """Start the configured MQTT side: an embedded broker (Mosquitto when installed, else
    amqtt) and the link, or the link alone to an external broker, or nothing."""
    from .mqtt.broker import AmqttBroker, free_port, start_embedded_broker
    from .mqtt.client import MQTTv5, MQTTv311
    from .mqtt.link import ServerLink

    mqtt_config = server.config.mqtt
    if mqtt_config.mode == "disabled":
        return MqttSide()
    port = port or mqtt_config.port
    broker = None
    protocol = MQTTv5
    username = password = None
    host = mqtt_config.host
    if mqtt_config.mode == "embedded":
        listen_host = listen_host or mqtt_config.host
        if not port_free(listen_host, port):
            taken, port = port, free_port()
            log.warning("MQTT port %d is taken; the embedded broker uses %d instead", taken, port)
        broker = start_embedded_broker(listen_host, port, data_dir / "broker")
        protocol = MQTTv311 if isinstance(broker, AmqttBroker) else MQTTv5
        host = "127.0.0.1" if listen_host in ("0.0.0.0", "") else listen_host
        log.info("MQTT broker (%s) on %s:%d", broker.name, listen_host, port)
    else:
        username = mqtt_config.username
        password = os.environ.get(mqtt_config.password_env) if mqtt_config.password_env else None
    link = ServerLink(server.service, host, port, protocol=protocol, username=username, password=password)
    if mqtt_config.tls:
        link.client.tls_set(ca_certs=mqtt_config.ca_file)
    link.start(keep_trying=mqtt_config.mode == "external")
    server.app.extensions["motcua.mqtt_status"] = link.status
    return MqttSide(broker, link, port, protocol)


def start_alerts(server: Server) -> AlertRunner:
    """The alert rules' thread (evaluated after changes and every [alerts].evaluate_every_s).
    Started after the MQTT side, so that what it raises at once is also published."""
    runner = AlertRunner(server.service)
    runner.start()
    return runner


# How long a thread may hold Python's global lock while another waits for it. Each SQLite
# statement lets go of the lock and takes it back. While thirty clerks' requests were built at
# once, each statement of a press waited behind them, and 0.5 ms instead of CPython's 5 ms
# helped (medium compressed day, press → board p99 485 → 319 ms). Since at most
# [server].request_concurrency requests are built at once (RequestGate), few threads want the
# lock together and each hand-over costs a context switch: with the gate, 5 ms gave p99
# 96–130 ms for 107–114 server CPU s over four runs, 0.5 ms 119–140 ms for 117–129 s over three
# (bench/full_day.py --tickets 6000 --day-s 144; docs/performance.md). Set here, so that a
# library that changes it cannot change how the server behaves.
GIL_SWITCH_INTERVAL_S = 0.005


def tune_process() -> None:
    """Process-wide settings of a serving process (not of a library user's)."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def run_http(server: Server, host: str, port: int) -> None:
    """Serve until interrupted. waitress: a thread pool, so event streams never block requests."""
    import waitress

    tune_process()

    log.info("HTTP on http://%s:%d", host, port)
    import signal

    def _terminate(signum, frame):
        raise KeyboardInterrupt  # systemd's SIGTERM: leave the same orderly way as Ctrl-C

    signal.signal(signal.SIGTERM, _terminate)
    try:
        _serve(server, host, port, waitress)
    finally:
        # Open board streams hold a thread each: end them before the store goes away.
        hub = server.app.extensions.get("motcua.board_hub")
        if hub is not None:
            hub.close_all()


# waitress writes a response into one in-memory buffer per connection and starts a new one only
# after outbuf_high_watermark bytes (16 MiB by default) have gone into it, sent or not: every open
# board stream kept up to 16 MiB of events it had already delivered (issue #9: ten boards, up to
# 160 MB, growing in step through the day). The same setting is how far a slow client may fall
# behind before the thread writing to it waits; a board stream that waits stops taking its
# events, and the board hub drops it (display_board/live.py).
OUTBUF_HIGH_WATERMARK = 256 * 1024


class RequestGate:
    """WSGI middleware: at most `limit` requests are being built at once; the others wait their turn,
    asleep, in the order they came.

    Every worker thread runs Python under one global lock. Thirty clerks' requests at once meant
    thirty threads taking turns at it a few hundred microseconds at a time, behind which the
    MQTT ingest (a press, a ticket request) waited too: on the medium compressed day, press →
    board p50/p99 153/503 ms with 48 threads building at once, 48/128 ms with two
    (docs/performance.md). Only building the response is gated: the app returns before a
    streamed body (a board's events) is iterated, so an open stream never holds a place, and
    writing to a slow client happens after the place is given back.

    `ungated` paths skip the gate: signing in is mostly a password hash (werkzeug's scrypt, tens
    of milliseconds without the GIL, already limited by accounts.HASHES_AT_ONCE), and thirty
    clerks signing in at opening time must not hold every place while they hash.

    `give_way`, when given, is called before a request waits for its place: the server passes
    its DeviceFirst's, so a request is built after the device messages waiting (a press, a ticket
    request), or 50 ms later at most (queue_server/device_first.py)."""

    def __init__(self, app: Callable, limit: int, ungated: frozenset[str] = frozenset(),
                 give_way: Callable[[], float] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.ungated = ungated
        self.give_way = give_way
        self._places = threading.BoundedSemaphore(limit)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self.ungated:
            return self.app(environ, start_response)
        if self.give_way is not None:
            self.give_way()  # device messages first (queue_server/device_first.py)
        with self._places:
            return self.app(environ, start_response)


UNGATED_PATHS = frozenset({"/api/v1/login"})


def wsgi_app(server: Server) -> Callable:
    """The WSGI application `motcua serve` gives waitress."""
    return RequestGate(server.app, server.config.server.request_concurrency, UNGATED_PATHS,
                       give_way=server.service.device_first.give_way)


def waitress_options(server: Server) -> dict:
    """How `motcua serve` runs waitress (tests that need the real settings use them too)."""
    return {
        "threads": server.config.server.threads,
        "ident": "motcua",
        "channel_timeout": 120,
        "connection_limit": 1000,
        "max_request_body_size": MAX_IMPORT_BODY + 64 * 1024,  # waitress buffers bodies before Flask sees them
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,
    }


def _serve(server: Server, host: str, port: int, waitress) -> None:
    waitress.serve(wsgi_app(server), host=host, port=port, **waitress_options(server))
