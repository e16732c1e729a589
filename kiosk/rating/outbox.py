"""The rating terminal's durable outbox: a press is on disk before it goes on the wire.

Every event gets its msg_id here, `{device}:{boot}:{seq}`: `boot` is random hex drawn each time
the outbox is opened (so a terminal whose outbox file was lost or replaced cannot repeat an old
msg_id, which the server would drop as a repeat), `seq` counts from 1 within that boot. The
exact bytes published are stored with it, so a row sent again after a restart carries its
original msg_id, ticket and `at`: the server binds it as it would have on time and counts a
repeat once. A row is removed only when the broker has acknowledged it (PUBACK).

One SQLite file per terminal, WAL with synchronous=FULL: a press that returned is on disk
even if the power goes a moment later. Thread-safe: one connection behind one lock (presses
come from the UI thread, acknowledgements from paho's network thread).
"""
from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order presses happened in
    msg_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxEntry:
    msg_id: str
    topic: str
    payload: bytes
    created_at: datetime


class Outbox:
    """`add` writes an event, `pending` lists what is not yet acknowledged, `remove` drops one."""

    def __init__(self, path: str | Path, device: str) -> None:
        self.path = Path(path)
        self.device = device
        self.boot = secrets.token_hex(6)
        self._seq = 0
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we say where transactions begin and end.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def add(self, topic: str, make_payload: Callable[[str], bytes], *, now: datetime | None = None) -> OutboxEntry:
        """Give the event its msg_id, build its payload with it and store both (committed on return)."""
        created_at = now or datetime.now(timezone.utc)
        with self._lock:
            self._seq += 1
            msg_id = f"{self.device}:{self.boot}:{self._seq}"
            payload = make_payload(msg_id)
            self._db.execute(
                "INSERT INTO outbox (msg_id, topic, payload, created_at) VALUES (?, ?, ?, ?)",
                (msg_id, topic, payload, created_at.isoformat()),
            )
        return OutboxEntry(msg_id, topic, payload, created_at)

    def pending(self) -> list[OutboxEntry]:
        """Everything not yet acknowledged, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT msg_id, topic, payload, created_at FROM outbox ORDER BY seq").fetchall()
        return [OutboxEntry(msg_id, topic, bytes(payload), datetime.fromisoformat(created_at))
                for msg_id, topic, payload, created_at in rows]

    def remove(self, msg_id: str) -> bool:
        """The broker has it: forget it. False when it was already gone (a second PUBACK)."""
        with self._lock:
            return self._db.execute("DELETE FROM outbox WHERE msg_id = ?", (msg_id,)).rowcount > 0

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
