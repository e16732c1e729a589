"""Helpers for the MQTT resilience tests: bulk served tickets, a read-only view of the SQLite
file polled with deadlines, rating events, and `motcua serve` as a child process."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt

from queue_server.config import Config, parse_config
from queue_server.domain import tickets as ticket_rules
from queue_server.domain.tickets import Ticket
from queue_server.domain.timeutil import Clock, local_day
from queue_server.mqtt.link import ServerLink
from queue_server.server import DATABASE_NAME, Server, build
from queue_server.service import new_ticket_id


REPO = Path(__file__).resolve().parents[2]
POLL_S = 0.05
ALL_WEEK = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "open": "00:00", "close": "24:00"}]

T = TypeVar("T")


# --------------------------------------------------------------------------- waiting


def wait_until(what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """Call `probe` every 50 ms until `done(value)`; fail saying what was awaited and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {value!r}")
        time.sleep(POLL_S)


class Database:
    """A read-only connection to the server's SQLite file (WAL: every query sees the last commit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)

    def close(self) -> None:
        self.conn.close()

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.conn.execute(sql, params).fetchone()[0]

    def rows(self, sql: str, *params: Any) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def rating_rows(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM ratings")

    def msg_ids(self) -> set[str]:
        return {row[0] for row in self.rows("SELECT msg_id FROM ratings")}

    def has_msg_id(self, msg_id: str) -> bool:
        return self.scalar("SELECT COUNT(*) FROM ratings WHERE msg_id = ?", msg_id) > 0

    def reject_counts(self) -> dict[str, int]:
        return dict(self.rows("SELECT reason, COUNT(*) FROM rejects GROUP BY reason"))

    def wait_for(self, what: str, probe: Callable[[Database], T], done: Callable[[T], bool],
                 timeout: float = 30.0) -> T:
        return wait_until(what, lambda: probe(self), done, timeout)


@contextmanager
def database(data_dir: Path) -> Iterator[Database]:
    db = Database(data_dir / DATABASE_NAME)
    try:
        yield db
    finally:
        db.close()


# --------------------------------------------------------------------------- configs and data


def site_data(site: str = "hcc-test", counters: int = 50, window_s: int = 3600) -> dict:
    """A centre open around the clock, one field served by `counters` counters, a long rating window."""
    return {
        "site": {"id": site, "name": {"vi": "Trung tâm thử", "en": "Test centre"}},
        "fields": [
            {"id": "dat-dai", "letter": "A", "name": {"vi": "Đất đai", "en": "Land"}},
            {"id": "ho-tich", "letter": "B", "name": {"vi": "Hộ tịch", "en": "Civil status"}},
        ],
        "counters": [{"id": f"quay-{n}", "number": n, "fields": ["dat-dai", "ho-tich"]}
                     for n in range(1, counters + 1)],
        "rating": {"window_s": window_s},
        "opening_hours": ALL_WEEK,
    }


def site_config(**options: Any) -> Config:
    return parse_config(site_data(**options))


def write_site_toml(path: Path, data: dict, *, data_dir: Path, http_port: int, mqtt_host: str,
                    mqtt_port: int) -> Path:
    """The TOML of `site_data` plus [server] and an external [mqtt] (no TOML writer in the stdlib)."""
    q = json.dumps  # a JSON string is a valid TOML basic string for these values
    lines = [
        f"[site]\nid = {q(data['site']['id'])}\nname = {{ vi = {q(data['site']['name']['vi'])}, "
        f"en = {q(data['site']['name']['en'])} }}\n",
        f"[rating]\nwindow_s = {data['rating']['window_s']}\n",
    ]
    for period in data["opening_hours"]:
        lines.append(f"[[opening_hours]]\ndays = {q(period['days'])}\nopen = {q(period['open'])}\n"
                     f"close = {q(period['close'])}\n")
    for field in data["fields"]:
        lines.append(f"[[fields]]\nid = {q(field['id'])}\nletter = {q(field['letter'])}\n"
                     f"name = {{ vi = {q(field['name']['vi'])}, en = {q(field['name']['en'])} }}\n")
    for counter in data["counters"]:
        lines.append(f"[[counters]]\nid = {q(counter['id'])}\nnumber = {counter['number']}\n"
                     f"fields = {q(counter['fields'])}\n")
    lines.append(f"[server]\nhost = \"127.0.0.1\"\nport = {http_port}\ndata_dir = {q(str(data_dir))}\n")
    lines.append(f"[mqtt]\nmode = \"external\"\nhost = {q(mqtt_host)}\nport = {mqtt_port}\n")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


FINISH_GAP = timedelta(seconds=15)
# Above a quarter of the default burst window (5 presses in 10 s at one counter is misuse).
MIN_FINISH_GAP = timedelta(seconds=3)


def add_served_tickets(server: Server, count: int, *, finished_at: datetime, field_id: str = "dat-dai",
                       service_s: float = 300) -> list[Ticket]:
    """`count` tickets issued, called and finished across every counter, written in one transaction.

    The domain's own functions build each ticket (new_ticket → call → finish) and the history gets
    its records; only the per-ticket transactions of the service are skipped (10,000 tickets through
    issue/next/finish take ~40 s, this ~1 s).
    """
    config, store = server.config, server.store
    field = config.field(field_id)
    assert field is not None
    counters = [c.id for c in config.counters_serving(field_id)]
    issued_at = finished_at - timedelta(seconds=service_s + 60)
    called_at = finished_at - timedelta(seconds=service_s)
    day = local_day(issued_at, config.tz)
    # A counter finishes one ticket every FINISH_GAP, going back in time: presses for them are
    # spread like real ones, not a burst (which the server flags as misuse). Shortly after local
    # midnight the spread would reach into yesterday (tests run on the real clock): the gap then
    # shrinks so that every ticket stays on one day, never below what keeps presses from a burst.
    rounds = -(-count // len(counters))
    day_start = datetime.combine(day, datetime.min.time(), config.tz)
    gap = FINISH_GAP
    if rounds > 1 and issued_at - gap * (rounds - 1) < day_start:
        gap = max(MIN_FINISH_GAP, (issued_at - day_start) / rounds)
    made: list[Ticket] = []
    with store.write():
        first = store.highest_number(day, field_id) + 1
        for n in range(count):
            earlier = gap * (n // len(counters))
            ticket = ticket_rules.new_ticket(new_ticket_id(), field, first + n, issued_at - earlier, config)
            ticket = ticket_rules.call(ticket, counters[n % len(counters)], None, called_at - earlier)
            ticket = ticket_rules.finish(ticket, finished_at - earlier)
            store.insert_ticket(ticket)
            store.append_history(finished_at, day, "ticket_finished", ticket.id, ticket, None)
            made.append(ticket)
    return made


def rating(msg_id: str, ticket: Ticket, at: datetime, level: str = "satisfied") -> dict:
    """A press that names its ticket, at the device time `at`."""
    return {"msg_id": msg_id, "counter": ticket.counter_id, "level": level, "ticket": ticket.id,
            "at": at.isoformat()}


def publish_all(client: mqtt.Client, messages: Iterable[tuple[str, bytes | str]],
                timeout: float = 60.0) -> list[mqtt.MQTTMessageInfo]:
    """Publish at QoS 1 and wait until the broker has acknowledged every one."""
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    wait_until("PUBACKs from the broker", lambda: sum(1 for i in infos if not i.is_published()),
               lambda left: left == 0, timeout)
    return infos


def check_exactly_once(db: Database, published: set[str], tickets: int) -> None:
    """Every distinct msg_id published is one row, and every ticket has exactly one counted rating."""
    assert db.rating_rows() == len(published), "ratings rows != distinct msg_ids published"
    assert db.msg_ids() == published
    assert db.rows("SELECT msg_id, COUNT(*) FROM ratings GROUP BY msg_id HAVING COUNT(*) > 1") == []
    assert db.rows("SELECT ticket_id, COUNT(*) FROM ratings WHERE counted = 1 GROUP BY ticket_id "
                   "HAVING COUNT(*) > 1") == []
    assert db.scalar("SELECT COUNT(*) FROM ratings WHERE counted = 1") == tickets
    assert db.scalar("SELECT COUNT(DISTINCT ticket_id) FROM ratings WHERE counted = 1") == tickets
    # One history record per stored press: nothing was recorded twice and rolled back halfway.
    assert db.scalar("SELECT COUNT(*) FROM history WHERE kind = 'rating_recorded'") == len(published)
    assert db.reject_counts() == {}, "a redelivery must be dropped, not rejected (internal_error?)"


# --------------------------------------------------------------------------- in-process server


@contextmanager
def linked_server(config: Config, data_dir: Path, clock: Clock | None, host: str, port: int,
                  protocol: mqtt.MQTTProtocolVersion, timeout: float = 10.0) -> Iterator[tuple[Server, ServerLink]]:
    """build() + ServerLink on a data directory; the link stopped and the store closed afterwards."""
    server = build(config, data_dir, clock=clock)
    try:
        link = ServerLink(server.service, host, port, protocol=protocol)
        link.start(timeout=timeout)
        try:
            yield server, link
        finally:
            link.stop()
    finally:
        server.store.close()


# --------------------------------------------------------------------------- `motcua serve` as a child


@dataclass
class ServerProcess:
    """`python -m queue_server.cli serve --config FILE`, its output appended to `log_path`."""

    config_path: Path
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "queue_server.cli", "serve", "--config", str(self.config_path)],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no `stopped`, no flush, the Last Will is published by the broker."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (an orderly stop), SIGKILL if it does not exit in time. Returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
