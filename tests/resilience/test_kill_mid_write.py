"""`motcua serve` killed with SIGKILL again and again in the middle of a heavy write load.

The real server runs as a child process (tests/mqtt/helpers.py ServerProcess) against a real
Mosquitto and its SQLite file, and is kept busy writing: a terminal's stream of rating presses
(with QoS 1 repeats), ticket requests from a kiosk over MQTT, and tickets issued over HTTP by a
device with an Idempotency-Key (retried with the same key whenever the server is not there).
At points drawn from a seeded RNG (so a failure is there again on the next run) it is killed
with SIGKILL, mid-transaction more often than not, and started again. After every kill:

- `PRAGMA integrity_check` of the file is ok before the server touches it again;

and at the end:

- every press the broker acknowledged to the terminal is stored exactly once, each served
  ticket has exactly one counted rating, every acknowledged ticket request and every HTTP
  ticket answered 2xx exists exactly once (ticket numbers without duplicate or gap), and the
  figures equal those recomputed from the history (tests/resilience/ending.py).

Short form: 3 kills; long form (`-m long`): 20 kills over a bigger load.
"""
from __future__ import annotations

import json
import random
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from queue_server.accounts import create_device_token
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.client import subscribe_and_wait
from queue_server.server import DATABASE_NAME, build
from tests.mqtt.conftest import WAIT_S, Inbox, connected
from tests.mqtt.helpers import (
    ServerProcess,
    add_served_tickets,
    publish_all,
    rating,
    site_config,
    site_data,
    wait_until,
    write_site_toml,
)

from .ending import check_nothing_lost

SITE = "hcc-kill"
LEVELS = ("very_satisfied", "satisfied", "unsatisfied")
DONE_TIMEOUT_S = 180.0  # a deadline for the whole load to be handled, not an expectation


@dataclass(frozen=True)
class Load:
    presses: int  # served tickets, one press each
    mqtt_requests: int
    http_tickets: int
    kills: int
    seed: int


SHORT = Load(presses=2_000, mqtt_requests=150, http_tickets=150, kills=3, seed=20261123)
LONG = Load(presses=10_000, mqtt_requests=1_000, http_tickets=1_000, kills=20, seed=766)


@dataclass
class HttpIssuer:
    """A device issuing tickets over HTTP, one key after another, each retried until answered."""

    base_url: str
    token: str
    keys: list[str]
    answered: dict[str, str] = field(default_factory=dict)  # key -> ticket id
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}"}
        for key in self.keys:
            while not self.stop.is_set():
                try:
                    response = session.post(f"{self.base_url}/api/v1/tickets", json={"field": "ho-tich"},
                                            headers={**headers, "Idempotency-Key": key}, timeout=10)
                except requests.RequestException:
                    session = requests.Session()  # the server is down or was killed mid-request
                    self.stop.wait(0.05)
                    continue
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code in (200, 201):
                    ticket_id = response.json()["id"]
                    if self.answered.setdefault(key, ticket_id) != ticket_id:
                        self.failures.append(f"{key}: {self.answered[key]} then {ticket_id}")
                    break
                self.failures.append(f"{key}: {response.status_code} {response.text[:200]}")
                break


def progress(db_path: Path) -> int:
    """Rows written so far (ratings and tickets), read without disturbing the writer."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT (SELECT COUNT(*) FROM ratings) + (SELECT COUNT(*) FROM tickets)").fetchone()[0]
    finally:
        conn.close()


def integrity(db_path: Path) -> list[tuple]:
    """The check a crashed server's file must pass before it is opened again (WAL recovered)."""
    conn = sqlite3.connect(db_path, timeout=10)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def kill_again_and_again(mosquitto: MosquittoBroker, clients, tmp_path: Path, load: Load) -> None:
    rng = random.Random(load.seed)
    data_dir = tmp_path / "site-data"
    db_path = data_dir / DATABASE_NAME
    config = site_config(site=SITE, counters=20)
    prepared = build(config, data_dir)  # the real clock: the child uses it too
    try:
        served = add_served_tickets(prepared, load.presses, finished_at=prepared.service.now())
        token = create_device_token(prepared.store, "kiosk-2", prepared.service.now())
        fence_at = prepared.service.now()
    finally:
        prepared.store.close()
    base_tickets = load.presses
    http_port = free_port()
    config_path = write_site_toml(tmp_path / "site.toml", site_data(site=SITE, counters=20), data_dir=data_dir,
                                  http_port=http_port, mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)

    # The load: presses (5 % sent twice) and ticket requests, published as fast as the broker
    # takes them; the broker keeps them for the server's persistent session while it is dead.
    presses = [(contract.topic_rating(SITE, "term-1"),
                json.dumps(rating(f"term-1:1:{n}", ticket, ticket.finished_at, LEVELS[n % 3])).encode())
               for n, ticket in enumerate(served)]
    presses += rng.sample(presses, len(presses) // 20)
    rng.shuffle(presses)
    transactions = [f"kiosk-1:tx-{n}" for n in range(load.mqtt_requests)]
    requests_ = [(contract.topic_ticket_request(SITE, "kiosk-1"),
                  json.dumps({"transaction": tx, "field": "dat-dai"}).encode()) for tx in transactions]
    terminal = connected(clients, mosquitto, "term-1", clean_start=False)
    kiosk_inbox = Inbox()
    kiosk = connected(clients, mosquitto, "kiosk-1", clean_start=False, inbox=kiosk_inbox)
    subscribe_and_wait(kiosk, [(contract.topic_ticket_response(SITE, "kiosk-1"), 1)], timeout=WAIT_S)
    status = Inbox()
    watcher = connected(clients, mosquitto, "watcher", inbox=status)
    subscribe_and_wait(watcher, [(contract.topic_server_status(SITE), 1)], timeout=WAIT_S)

    total = len({m for _, m in presses}) + load.mqtt_requests + load.http_tickets + base_tickets
    kill_at = sorted(rng.sample(range(base_tickets + 50, base_tickets + (total - base_tickets) * 9 // 10), load.kills))
    server = ServerProcess(config_path, tmp_path / "server.log")
    issuer = HttpIssuer(f"http://127.0.0.1:{http_port}", token, [f"http-{n}" for n in range(load.http_tickets)])
    issuing = threading.Thread(target=issuer.run, name="http-issuer", daemon=True)
    try:
        server.start()
        onlines = 1
        wait_until("the server online", lambda: sum(m.payload == b"online" for m in status.messages),
                   lambda n: n >= onlines, WAIT_S)
        acked = publish_all(terminal, presses[: len(presses) // 2])
        issuing.start()
        acked += publish_all(kiosk, requests_)
        acked += publish_all(terminal, presses[len(presses) // 2:])

        kills_done = []
        for target in kill_at:
            reached = wait_until(f"{target} rows written before kill #{len(kills_done) + 1}",
                                 lambda: (progress(db_path), server.running()),
                                 lambda seen: seen[0] >= target or not seen[1], DONE_TIMEOUT_S)
            assert reached[1], f"motcua serve died on its own:\n{server.log()[-3000:]}"
            server.kill()
            kills_done.append(progress(db_path))
            assert integrity(db_path) == [("ok",)], f"after kill #{len(kills_done)}"
            server.start()
            onlines += 1
            wait_until("the server online again", lambda: sum(m.payload == b"online" for m in status.messages),
                       lambda n: n >= onlines, WAIT_S)

        # The end of the load: a press published last (a session delivers in order) and every
        # HTTP key answered.
        fence = {"msg_id": "term-1:fence", "counter": "quay-1", "level": "satisfied", "at": fence_at.isoformat()}
        acked += publish_all(terminal, [(contract.topic_rating(SITE, "term-1"), json.dumps(fence).encode())])
        wait_until("the last press handled", lambda: _has_msg_id(db_path, "term-1:fence"), bool, DONE_TIMEOUT_S)
        issuing.join(DONE_TIMEOUT_S)
        assert not issuing.is_alive(), "HTTP tickets still not answered"
        assert server.running()
    finally:
        issuer.stop.set()
        server.terminate()

    assert len(kills_done) == load.kills
    assert any(rows < total for rows in kills_done), f"every kill came after the load was written: {kills_done}"
    assert issuer.failures == [], issuer.failures[:5]
    assert set(issuer.answered) == set(issuer.keys)
    # A kiosk may be answered twice (a request redelivered after a kill): always the same ticket.
    answers: dict[str, set[str]] = {}
    for message in kiosk_inbox.messages:
        response = json.loads(message.payload)
        assert response["status"] == "ok", response
        answers.setdefault(response["transaction"], set()).add(response["data"]["ticket_id"])
    assert set(answers) <= set(transactions) and all(len(ids) == 1 for ids in answers.values())

    checker = build(config, data_dir)
    try:
        ending = check_nothing_lost(
            checker.service, msg_ids={json.loads(p)["msg_id"] for _, p in presses} | {"term-1:fence"},
            idempotency_keys=[("device:kiosk-1", tx) for tx in transactions]
            + [("device:kiosk-2", key) for key in issuer.keys])
        assert ending.counted == load.presses
        assert ending.flagged == {"nothing_to_rate": 1}  # the fence
        assert ending.tickets == base_tickets + load.mqtt_requests + load.http_tickets
        http_ids = set(issuer.answered.values())
        assert len(http_ids) == load.http_tickets  # every key its own ticket, the one it was answered
        assert ending.figures["ratings"]["counted"] == load.presses
        for transaction, ids in answers.items():
            assert checker.store.idempotent_ticket("device:kiosk-1", transaction) in ids
    finally:
        checker.store.close()


def _has_msg_id(db_path: Path, msg_id: str) -> bool:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM ratings WHERE msg_id = ?", [msg_id]).fetchone()[0] == 1
    finally:
        conn.close()


def test_killed_three_times_mid_write(mosquitto: MosquittoBroker, clients, tmp_path: Path) -> None:
    kill_again_and_again(mosquitto, clients, tmp_path, SHORT)


@pytest.mark.long
def test_killed_twenty_times_mid_write(mosquitto: MosquittoBroker, clients, tmp_path: Path) -> None:
    kill_again_and_again(mosquitto, clients, tmp_path, LONG)
