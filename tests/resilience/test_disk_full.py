"""The disk holding the database fills up under a running `motcua serve`, then space comes back.

The data directory is on a real 2 MiB tmpfs (mounted here, as root), filled with a file to the
last block while the server runs against a real Mosquitto:

- HTTP writes are answered 507 with the bilingual `storage_full` error and change nothing;
  reads still work, /healthz says the database is full (503), the process stays up;
- MQTT messages are not acknowledged: the server keeps the batch and tries again, and when it
  is killed meanwhile the broker delivers them again to the next process;
- once space is freed, the same requests succeed (an Idempotency-Key retried gives one
  ticket), every press is stored once, and the ending of every resilience test holds
  (integrity_check ok, nothing lost, nothing counted twice, figures equal the history's).

A second test checks the same handling in process and without root, with SQLite's page limit
standing in for the disk (the very same SQLITE_FULL error).
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from queue_server.accounts import create_device_token
from queue_server.domain.timeutil import FixedClock
from queue_server.mqtt import contract
from queue_server.mqtt.broker import MosquittoBroker, free_port
from queue_server.mqtt.client import subscribe_and_wait
from queue_server.mqtt.link import ServerLink, _Inbound
from queue_server.server import build
from queue_server.store import StorageFull
from tests.conftest import MONDAY_9AM
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

SITE = "hcc-full"
DISK_SIZE = "2m"
RETRY_DEADLINE_S = 60.0  # the link retries a failed batch at most every 15 s


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of its own (the test using it needs root: see NEEDS_ROOT)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0700", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"mount failed: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    """A file taking every free block of the disk; returns it (delete it to free the space)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        chunk = b"\0" * 65536
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    finally:
        os.close(fd)
    assert os.statvfs(disk).f_bavail == 0
    return filler


class Http:
    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = requests.Session()
        self.headers = {"Authorization": f"Bearer {token}"}

    def issue(self, key: str, field_id: str = "ho-tich") -> requests.Response:
        return self.session.post(f"{self.base}/api/v1/tickets", json={"field": field_id},
                                 headers={**self.headers, "Idempotency-Key": key}, timeout=10)

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=10)


# Mounting needs root; CI runs the quick start as root. Without it, the page-limit test below
# still produces the same "database or disk is full" error through SQLite itself.
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a real small filesystem needs root")


@NEEDS_ROOT
def test_disk_full_is_refused_cleanly_and_nothing_is_lost(
        small_disk: Path, mosquitto: MosquittoBroker, clients, tmp_path: Path) -> None:
    data_dir = small_disk / "data"
    config = site_config(site=SITE, counters=5)
    prepared = build(config, data_dir)  # the real clock: the child uses it too
    try:
        served = add_served_tickets(prepared, 60, finished_at=prepared.service.now())
        token = create_device_token(prepared.store, "kiosk-2", prepared.service.now())
    finally:
        prepared.store.close()
    http_port = free_port()
    config_path = write_site_toml(tmp_path / "site.toml", site_data(site=SITE, counters=5), data_dir=data_dir,
                                  http_port=http_port, mqtt_host=mosquitto.host, mqtt_port=mosquitto.port)
    presses = [(contract.topic_rating(SITE, "term-1"),
                json.dumps(rating(f"term-1:1:{n}", ticket, ticket.finished_at)).encode())
               for n, ticket in enumerate(served)]
    terminal = connected(clients, mosquitto, "term-1", clean_start=False)
    kiosk_inbox = Inbox()
    kiosk = connected(clients, mosquitto, "kiosk-1", clean_start=False, inbox=kiosk_inbox)
    subscribe_and_wait(kiosk, [(contract.topic_ticket_response(SITE, "kiosk-1"), 1)], timeout=WAIT_S)
    status = Inbox()
    watcher = connected(clients, mosquitto, "watcher", inbox=status)
    subscribe_and_wait(watcher, [(contract.topic_server_status(SITE), 1)], timeout=WAIT_S)

    server = ServerProcess(config_path, tmp_path / "server.log")
    http = Http(http_port, token)
    acked_keys: list[str] = []
    try:
        server.start()
        wait_until("the server online", lambda: [m.payload for m in status.messages],
                   lambda seen: b"online" in seen, WAIT_S)
        wait_until("the HTTP side", lambda: _answers(http, "/healthz"), lambda code: code == 200, WAIT_S)
        pid = server.process.pid
        for n in range(3):
            assert http.issue(f"before-{n}").status_code == 201
            acked_keys.append(f"before-{n}")
        publish_all(terminal, presses[:20])
        wait_until("the first presses stored", lambda: _count(http), lambda n: n == 20, WAIT_S)

        # --- the disk fills up ----------------------------------------------------------------------
        filler = fill(small_disk)
        refused = None
        for n in range(500):  # until a write needs a block (the WAL may still have room in its file)
            response = http.issue(f"full-{n}")
            if response.status_code == 507:
                refused = (f"full-{n}", response)
                break
            assert response.status_code == 201, response.text
            acked_keys.append(f"full-{n}")
        assert refused is not None, "the writes never ran out of space"
        refused_key, response = refused
        error = response.json()["error"]
        assert error["code"] == "storage_full"
        vietnamese, english = error["message"].split(" / ")
        assert "hết chỗ lưu trữ" in vietnamese and "disk is full" in english
        assert http.issue(refused_key).status_code == 507  # still full: still refused, still nothing saved
        health = http.get("/healthz")
        assert health.status_code == 503 and health.json()["db"].startswith("full:")
        assert http.get("/api/v1/stats/today").status_code == 200  # reading still works
        tickets_while_full = http.get("/api/v1/stats/today").json()["tickets"]["issued"]

        # MQTT while full: the broker has the messages, the server cannot store them and does
        # not acknowledge them; it retries the batch.
        publish_all(terminal, presses[20:40])
        kiosk.publish(contract.topic_ticket_request(SITE, "kiosk-1"),
                      json.dumps({"transaction": "kiosk-1:full", "field": "dat-dai"}).encode(), qos=1).wait_for_publish(WAIT_S)
        wait_until("the server to find the disk full for MQTT", server.log,
                   lambda log: "disk full: a batch of" in log, WAIT_S)
        assert _count(http) == 20 and server.running() and server.process.pid == pid
        assert http.get("/api/v1/stats/today").json()["tickets"]["issued"] == tickets_while_full

        # --- space again: the server carries on by itself ------------------------------------------
        filler.unlink()
        wait_until("the presses sent while full", lambda: _count(http), lambda n: n == 40, RETRY_DEADLINE_S)
        wait_until("the kiosk's answer", lambda: [json.loads(m.payload) for m in kiosk_inbox.messages],
                   lambda answers: any(a["transaction"] == "kiosk-1:full" for a in answers), WAIT_S)
        retried = http.issue(refused_key)
        assert retried.status_code == 201  # the first time it is saved: nothing of the refused tries was kept
        assert http.issue(refused_key).json()["id"] == retried.json()["id"]
        acked_keys.append(refused_key)
        wait_until("/healthz ok again", lambda: _answers(http, "/healthz"), lambda code: code == 200, WAIT_S)
        assert server.process.pid == pid  # the same process all along

        # --- full again, and the server killed while it holds unacknowledged messages ----------------
        filler = fill(small_disk)
        full_logs = server.log().count("disk full: a batch of")
        publish_all(terminal, presses[40:])
        wait_until("the server to hold the last presses", server.log,
                   lambda log: log.count("disk full: a batch of") > full_logs, WAIT_S)
        server.kill()
        filler.unlink()
        server.start()
        wait_until("the presses redelivered to the next server", lambda: _count(http), lambda n: n == len(presses),
                   RETRY_DEADLINE_S)
        assert server.terminate() == 0
    finally:
        server.kill()

    checker = build(config, data_dir)
    try:
        ending = check_nothing_lost(
            checker.service, msg_ids={json.loads(p)["msg_id"] for _, p in presses},
            idempotency_keys=[("device:kiosk-2", key) for key in acked_keys] + [("device:kiosk-1", "kiosk-1:full")])
        assert ending.counted == len(presses) and ending.flagged == {}
        assert ending.tickets == len(served) + len(acked_keys) + 1
        assert checker.store.reject_counts() == {}
    finally:
        checker.store.close()


def _answers(http: Http, path: str) -> int | None:
    try:
        return http.get(path).status_code
    except requests.RequestException:
        return None  # not listening yet


def _count(http: Http) -> int | None:
    """Presses stored so far, as the server itself reports them (all on today's figures)."""
    try:
        figures = http.get("/api/v1/stats/today").json()["ratings"]
    except requests.RequestException:
        return None  # restarting
    return figures["counted"] + figures["flagged"]


# --------------------------------------------------------------------------- without a real disk


def test_a_full_database_rolls_back_answers_507_and_recovers(tmp_path: Path) -> None:
    """The same handling, fast and without root: SQLite's own page limit (PRAGMA max_page_count)
    gives the very error a full disk gives (SQLITE_FULL), on this thread's connection."""
    server = build(site_config(site=SITE, counters=2), tmp_path / "data", clock=FixedClock(MONDAY_9AM))
    try:
        store, service = server.store, server.service
        token = create_device_token(store, "kiosk-2", service.now())
        conn = store.db.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={pages}")
        web = server.app.test_client()
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"}
        # Enough writes to need a page more than the file has (a ticket needs little room).
        answers = [web.post("/api/v1/tickets", json={"field": "dat-dai"}, headers={**headers, "Idempotency-Key": f"k-{n}"})
                   for n in range(400)]
        statuses = [a.status_code for a in answers]
        assert 507 in statuses and set(statuses) <= {201, 507}, statuses
        first_refused = statuses.index(507)
        assert set(statuses[first_refused:]) == {507}
        assert answers[first_refused].get_json()["error"]["code"] == "storage_full"
        assert not conn.in_transaction  # the failed COMMIT did not leave a transaction behind
        assert store.storage_full is not None
        assert web.get("/healthz").status_code == 503
        with pytest.raises(StorageFull):
            service.issue_ticket("dat-dai")

        link = ServerLink(service, "127.0.0.1", 9)  # never connected: messages handed over as paho would
        request = contract.TicketRequest(transaction="kiosk-1:full", field="dat-dai")
        batch = [_Inbound(contract.topic_ticket_request(SITE, "kiosk-1"), contract.encode(request), 0, 0, 0)]
        assert link._ingest(batch) is False  # not committed, so not acknowledged
        issued = store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]

        conn.execute("PRAGMA max_page_count=1073741823")  # space again
        assert link._ingest(batch) is True
        again = web.post("/api/v1/tickets", json={"field": "dat-dai"},
                         headers={**headers, "Idempotency-Key": f"k-{first_refused}"})
        assert again.status_code == 201 and store.storage_full is None
        assert web.get("/healthz").get_json()["db"] == "ok"
        assert store.db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == issued + 2
        ending = check_nothing_lost(service, idempotency_keys=[("device:kiosk-2", f"k-{n}") for n in range(first_refused + 1)]
                                    + [("device:kiosk-1", "kiosk-1:full")])
        assert ending.tickets == first_refused + 2
    finally:
        server.store.close()
