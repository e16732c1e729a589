"""The one module that speaks SQL: the SQLite file (WAL), its migrations, and record mapping."""
from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from datetime import date, datetime
from pathlib import Path

import sqlite_utils

from .domain.alerts import AlertCondition, WaitingLine
from .domain.counters import CounterState
from .domain.dossiers import Channel, Dossier, Pause
from .domain.history import dossier_from_snapshot, rating_from_snapshot, ticket_from_snapshot
from .domain.ratings import Rating
from .domain.tickets import Ticket, TicketStatus, format_code
from .domain.timeutil import from_iso, to_utc_iso

BUSY_TIMEOUT_MS = 10_000
PAGE_CACHE_KIB = 512  # per connection


class StorageFull(Exception):
    """The disk holding the database is full: the write was rolled back, nothing changed.
    The API answers 507 and the MQTT link keeps the messages unacknowledged and retries."""


def is_storage_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc))
# The ticket columns in the order Ticket's fields are read back by tickets_between.
TICKET_COLUMNS = (
    "id", "service_day", "issued_field_id", "field_id", "letter", "number", "status", "issued_at", "queued_at",
    "priority", "lang", "device_id", "called_at", "last_called_at", "started_at", "finished_at", "counter_id",
    "clerk_id", "target_counter_id", "call_count", "transfers",
)


TICKET_SELECT = ", ".join(TICKET_COLUMNS)


def _ticket_from_tuple(row: tuple) -> Ticket:
    """A ticket from a row of TICKET_COLUMNS, by position: figures read thousands at a time and
    every press reads one, so no dict per row."""
    parse_time = datetime.fromisoformat
    return Ticket(
        id=row[0], service_day=date.fromisoformat(row[1]), issued_field_id=row[2], field_id=row[3], letter=row[4],
        number=row[5], status=TicketStatus(row[6]), issued_at=parse_time(row[7]), queued_at=parse_time(row[8]),
        priority=row[9], lang=row[10] or "vi", device_id=row[11],
        called_at=parse_time(row[12]) if row[12] else None,
        last_called_at=parse_time(row[13]) if row[13] else None,
        started_at=parse_time(row[14]) if row[14] else None,
        finished_at=parse_time(row[15]) if row[15] else None,
        counter_id=row[16], clerk_id=row[17], target_counter_id=row[18],
        call_count=row[19] or 0, transfers=row[20] or 0,
    )


def _iso(at: datetime | None) -> str | None:
    return to_utc_iso(at) if at is not None else None


def _dt(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


# What the figures read of a ticket and of a rating, in the order of domain.figures.TicketRecord and
# RatingRecord (Store.ticket_records_between and friends).
TICKET_RECORD_SELECT = ("service_day, issued_field_id, field_id, status, priority, issued_at, called_at, started_at, "
                        "finished_at, counter_id, clerk_id")
RATING_RECORD_SELECT = "day, counted, level, flag, field_id, counter_id, clerk_id, ticket_id, dossier_code"


def _ticket_record(row: tuple, start: int = 0) -> tuple:
    (service_day, issued_field_id, field_id, status, priority, issued_at, called_at, started_at, finished_at,
     counter_id, clerk_id) = row[start:start + 11]
    parse_time = datetime.fromisoformat
    return (date.fromisoformat(service_day), issued_field_id, field_id, status, priority, parse_time(issued_at),
            parse_time(called_at) if called_at else None, parse_time(started_at) if started_at else None,
            parse_time(finished_at) if finished_at else None, counter_id, clerk_id)


def _rating_record(row: tuple, start: int = 0) -> tuple:
    day, counted, level, flag, field_id, counter_id, clerk_id, ticket_id, dossier_code = row[start:start + 9]
    return (date.fromisoformat(day), bool(counted), level, flag or None, field_id, counter_id, clerk_id, ticket_id,
            dossier_code)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


_CHANNELS = {channel.value: channel for channel in Channel}


# --- migrations: one transaction per step; PRAGMA user_version records the last applied ----------


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["tickets"].create(
        {
            "id": str, "service_day": str, "issued_field_id": str, "field_id": str, "letter": str,
            "number": int, "status": str, "issued_at": str, "queued_at": str, "priority": str,
            "lang": str, "device_id": str, "called_at": str, "last_called_at": str, "started_at": str,
            "finished_at": str, "counter_id": str, "clerk_id": str, "target_counter_id": str,
            "call_count": int, "transfers": int,
        },
        pk="id",
        not_null={"service_day", "issued_field_id", "field_id", "letter", "number", "status", "issued_at", "queued_at"},
    )
    # The guarantee against two identical numbers, whatever the number of writers.
    db["tickets"].create_index(["service_day", "issued_field_id", "number"], unique=True, index_name="tickets_number_unique")
    db["tickets"].create_index(["service_day", "status"], index_name="tickets_day_status")
    db["idempotency"].create({"scope": str, "key": str, "ticket_id": str, "created_at": str}, pk=("scope", "key"))
    db["counters"].create(
        {
            "counter_id": str, "is_open": int, "clerk_id": str, "ticket_id": str, "rating_ticket_id": str,
            "rating_until": str, "rating_done": int, "normal_streak": int, "streak_day": str, "updated_at": str,
        },
        pk="counter_id",
    )
    db["ratings"].create(
        {
            "id": int, "msg_id": str, "device_id": str, "counter_id": str, "level": str, "received_at": str,
            "day": str, "counted": int, "flag": str, "ticket_id": str, "clerk_id": str, "dossier_code": str,
            "field_id": str, "reasons": str, "device_at": str,
        },
        pk="id",
        not_null={"counter_id", "level", "received_at", "day", "counted"},
    )
    db["ratings"].create_index(["msg_id"], unique=True, index_name="ratings_msg_id_unique")
    db["ratings"].create_index(["day"], index_name="ratings_day")
    # At most one counted rating per ticket, enforced by the database as well as the rules.
    db.execute("CREATE UNIQUE INDEX ratings_one_counted ON ratings(ticket_id) WHERE counted = 1")
    db["dossiers"].create(
        {
            "code": str, "procedure": str, "field_id": str, "channel": str, "received_on": str,
            "due_date": str, "returned_on": str, "pauses": str, "ticket_id": str, "counter_id": str,
            "clerk_id": str, "received_at": str, "returned_at": str,
        },
        pk="code",
        not_null={"procedure", "field_id", "channel", "received_on", "due_date"},
    )
    db["dossiers"].create_index(["returned_on"], index_name="dossiers_returned_on")
    db["dossiers"].create_index(["received_on"], index_name="dossiers_received_on")
    # The append-only history: every ticket action, rating and dossier event with a snapshot.
    db["history"].create(
        {"seq": int, "at": str, "day": str, "kind": str, "subject": str, "actor": str, "data": str},
        pk="seq",
        not_null={"at", "day", "kind", "subject", "data"},
    )
    db["history"].create_index(["day"], index_name="history_day")
    db["users"].create(
        {"username": str, "role": str, "password_hash": str, "disabled": int, "created_at": str},
        pk="username",
        not_null={"role", "password_hash", "disabled", "created_at"},
    )
    db["devices"].create(
        {"device_id": str, "token_hash": str, "created_at": str, "last_seen_at": str},
        pk="device_id",
    )
    db["devices"].create_index(["token_hash"], unique=True, index_name="devices_token_unique")
    # Rejected input of every origin (HTTP, MQTT, logins), kept with its reason and counted.
    db["rejects"].create(
        {"id": int, "at": str, "source": str, "where_": str, "device_id": str, "reason": str, "detail": str, "payload": str},
        pk="id",
        not_null={"at", "source", "reason"},
    )
    db["rejects"].create_index(["reason"], index_name="rejects_reason")


def _m002_seen_messages(db: sqlite_utils.Database) -> None:
    # msg_ids of device messages already acted on, so a QoS 1 redelivery acts once.
    db["seen_messages"].create(
        {"msg_id": str, "kind": str, "device_id": str, "at": str},
        pk="msg_id",
        not_null={"kind", "at"},
    )


def _m003_waiting_index(db: sqlite_utils.Database) -> None:
    # People ahead and queue lengths are counted per field on every ticket issued.
    db["tickets"].create_index(["service_day", "status", "field_id"], index_name="tickets_day_status_field")


def _m005_pressed_at(db: sqlite_utils.Database) -> None:
    # When each press is judged to have happened; bursts at a counter are looked up by it.
    db["ratings"].add_column("pressed_at", str)
    db.execute("UPDATE ratings SET pressed_at = received_at")
    db["ratings"].create_index(["counter_id", "pressed_at"], index_name="ratings_counter_pressed")


def _m004_device_health(db: sqlite_utils.Database) -> None:
    # What the broker and the devices say about themselves: online/offline (birth and Last
    # Will), when they were last heard from, and their printer's state.
    for column in ("status", "status_since", "last_topic", "printer_state", "printer_detail", "printer_since"):
        db["devices"].add_column(column, str)


def _m006_alerts(db: sqlite_utils.Database) -> None:
    # Alerts raised by the configured rules, kept after they clear (the dashboard's "recent").
    db["alerts"].create(
        {
            "id": int, "rule_id": str, "kind": str, "subject": str, "severity": str, "message_vi": str,
            "message_en": str, "details": str, "raised_at": str, "cleared_at": str,
        },
        pk="id",
        not_null={"rule_id", "kind", "subject", "severity", "message_vi", "message_en", "details", "raised_at"},
    )
    # At most one open alert per rule and subject, whoever evaluates the rules.
    db.execute("CREATE UNIQUE INDEX alerts_open_unique ON alerts(rule_id, subject) WHERE cleared_at IS NULL")
    db["alerts"].create_index(["cleared_at"], index_name="alerts_cleared_at")


def _m007_reschedule_sessions_export_runs(db: sqlite_utils.Database) -> None:
    # Dossier reschedule: the reason for the delay and the new date printed on the apology
    # slip, and when they were given. due_date keeps the receipt's date (figures judge by it).
    for column in ("delay_reason", "new_due_on", "rescheduled_at"):
        db["dossiers"].add_column(column, str)
    # Raised when an account is disabled, re-enabled or given a new password: a session
    # cookie signed under an older epoch is refused, so those sessions end for good.
    db["users"].add_column("session_epoch", int, not_null_default=0)
    # The scheduled export at closing time: one row per file written (status ok), which is
    # how a day is remembered as done, and one per failure with its reason.
    db["export_runs"].create(
        {"id": int, "day": str, "format": str, "status": str, "path": str, "detail": str, "at": str},
        pk="id",
        not_null={"day", "status", "at"},
    )
    db["export_runs"].create_index(["day", "status"], index_name="export_runs_day_status")


def _m008_recent_finished_index(db: sqlite_utils.Database) -> None:
    # The wait estimate reads a field's last finished tickets after every call and every ticket
    # issued: in finished_at order from the index, not by sorting the whole day's tickets.
    db["tickets"].create_index(["service_day", "field_id", "status", "finished_at"], index_name="tickets_day_field_finished")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m001_initial, _m002_seen_messages, _m003_waiting_index, _m004_device_health, _m005_pressed_at,
    _m006_alerts, _m007_reschedule_sessions_export_runs, _m008_recent_finished_index,
]


class Store:
    """SQLite in WAL mode, a connection per thread, writes serialised (BEGIN IMMEDIATE)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._all_connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # The last "disk full" while it lasts (cleared by the next commit), for /healthz.
        self.storage_full: str | None = None
        self.migrate()

    # --- connections and transactions ---------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL: a killed process loses nothing committed; only power loss can drop
            # the very last transactions, never corrupt the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # A connection per thread, and waitress alone runs dozens: SQLite's default page cache
            # (2 MB each) would add up to most of the server's memory. The OS caches the file anyway.
            conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
            conn.execute("PRAGMA foreign_keys=ON")
            db = sqlite_utils.Database(conn)
            self._local.db = db
            with self._connections_lock:
                self._all_connections.append(conn)
        return db

    def _query(self, sql: str, params: list | tuple = ()) -> Iterator[dict]:
        """Rows as dicts, straight from the connection (reads need no savepoint guard)."""
        cursor = self.db.conn.execute(sql, params)
        columns = [description[0] for description in cursor.description]
        for row in cursor:
            yield dict(zip(columns, row))

    def _rows_in_one_step(self, columns: str, select_sql: str, params: list | tuple = ()) -> list[list]:
        """The rows of `select_sql` (which selects `columns`), built into one JSON array by SQLite
        and read in one step instead of one step per row, in no promised order. Every step lets go
        of the GIL and, on a busy server, waits to get it back behind the other threads: the reads
        on the path of every ticket and press cost one such wait each, not one per row."""
        (text,) = self.db.conn.execute(
            f"SELECT json_group_array(json_array({columns})) FROM ({select_sql})", params
        ).fetchone()
        return json.loads(text)

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction. Nested calls join the outer one; `after_commit` callbacks
        run once the outermost one has committed (and are dropped if it rolls back)."""
        with self._write_lock:
            db = self.db
            if db.conn.in_transaction:
                yield db
                return
            self._local.after_commit = []
            self._local.scratch = {}
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
                # A COMMIT that fails (the disk full) must not leave the transaction open: the
                # next write() would join it, and nothing would ever be committed again.
                db.conn.execute("COMMIT")
            except BaseException as exc:
                if db.conn.in_transaction:  # SQLITE_FULL may have rolled it back already
                    db.conn.rollback()
                self._local.after_commit = []
                if is_storage_full(exc):
                    self.storage_full = str(exc)
                    raise StorageFull(f"{self.path}: {exc}") from exc
                raise
            self.storage_full = None
            callbacks, self._local.after_commit = self._local.after_commit, []
        self._local.committed_memo = {}
        try:
            for callback in callbacks:
                callback()
        finally:
            self._local.committed_memo = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Part of a write transaction that can fail alone (one message of a batch)."""
        conn = self.db.conn
        assert conn.in_transaction, "a savepoint lives inside store.write()"
        pending = getattr(self._local, "after_commit", [])
        kept = len(pending)
        conn.execute("SAVEPOINT motcua_item")
        try:
            yield
        except BaseException as exc:
            if conn.in_transaction:  # SQLITE_FULL may have rolled back the whole transaction
                conn.execute("ROLLBACK TO motcua_item")
                conn.execute("RELEASE motcua_item")
            del pending[kept:]
            if is_storage_full(exc):
                # Not this item's fault: the whole batch fails and is tried again.
                raise StorageFull(f"{self.path}: {exc}") from exc
            raise
        else:
            conn.execute("RELEASE motcua_item")

    def transaction_scratch(self) -> dict | None:
        """A dict that lives as long as the current write transaction (None outside one): for
        what one commit should do once, however many changes of a batch asked for it."""
        if not self.db.conn.in_transaction:
            return None
        return self._local.scratch

    def committed_memo(self) -> dict | None:
        """A dict shared by the callbacks after one commit (None elsewhere): what they all read
        of the committed state (a line's service times…) is read once, not once per callback.
        Not inside a transaction (one a callback opened too): a later write could change what was read."""
        memo = getattr(self._local, "committed_memo", None)
        return None if memo is None or self.db.conn.in_transaction else memo

    def after_commit(self, callback: Callable[[], None]) -> bool:
        """Run `callback` after the current transaction commits; False (not queued) outside one."""
        if not self.db.conn.in_transaction:
            return False
        self._local.after_commit.append(callback)
        return True

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._all_connections:
                conn.close()
            self._all_connections.clear()
        self._local = threading.local()

    def migrate(self) -> int:
        db = self.db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for number, step in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            with self.write():
                step(db)
                db.execute(f"PRAGMA user_version={number}")
        return len(MIGRATIONS)

    def check(self) -> str:
        return self.db.execute("PRAGMA quick_check").fetchone()[0]

    # --- tickets --------------------------------------------------------------------------------

    @staticmethod
    def _ticket_row(ticket: Ticket) -> dict:
        return {
            "id": ticket.id,
            "service_day": ticket.service_day.isoformat(),
            "issued_field_id": ticket.issued_field_id,
            "field_id": ticket.field_id,
            "letter": ticket.letter,
            "number": ticket.number,
            "status": str(ticket.status),
            "issued_at": _iso(ticket.issued_at),
            "queued_at": _iso(ticket.queued_at),
            "priority": ticket.priority,
            "lang": ticket.lang,
            "device_id": ticket.device_id,
            "called_at": _iso(ticket.called_at),
            "last_called_at": _iso(ticket.last_called_at),
            "started_at": _iso(ticket.started_at),
            "finished_at": _iso(ticket.finished_at),
            "counter_id": ticket.counter_id,
            "clerk_id": ticket.clerk_id,
            "target_counter_id": ticket.target_counter_id,
            "call_count": ticket.call_count,
            "transfers": ticket.transfers,
        }

    @staticmethod
    def ticket_from_row(row: dict) -> Ticket:
        return ticket_from_snapshot(row)

    def insert_ticket(self, ticket: Ticket) -> None:
        row = self._ticket_row(ticket)
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.db.execute(f"INSERT INTO tickets ({columns}) VALUES ({marks})", list(row.values()))

    def update_ticket(self, ticket: Ticket) -> None:
        row = self._ticket_row(ticket)
        ticket_id = row.pop("id")
        assignments = ", ".join(f"{column} = ?" for column in row)
        self.db.execute(f"UPDATE tickets SET {assignments} WHERE id = ?", [*row.values(), ticket_id])

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        row = self.db.conn.execute(f"SELECT {TICKET_SELECT} FROM tickets WHERE id = ?", [ticket_id]).fetchone()
        return _ticket_from_tuple(row) if row else None

    def highest_number(self, day: date, field_id: str) -> int:
        return self.db.execute(
            "SELECT COALESCE(MAX(number), 0) FROM tickets WHERE service_day = ? AND issued_field_id = ?",
            [day.isoformat(), field_id],
        ).fetchone()[0]

    def waiting_tickets(self, day: date, fields: list[str] | None = None) -> list[Ticket]:
        """The whole waiting line, in line order. Not read on the hot path any more ("next" reads
        next_candidates, the alerts waiting_lines): it is what those are checked against in tests."""
        sql = f"SELECT {TICKET_SELECT} FROM tickets WHERE service_day = ? AND status = 'waiting'"
        params: list = [day.isoformat()]
        if fields is not None:
            sql += f" AND field_id IN ({', '.join('?' for _ in fields)})"
            params += fields
        return [_ticket_from_tuple(row) for row in self.db.conn.execute(sql + " ORDER BY queued_at, number", params)]

    def next_candidates(self, day: date, counter_id: str, fields: list[str]) -> list[Ticket]:
        """The first ticket, in line order (queued_at, number, id: Ticket.line_key), of each line
        a counter calls from: tickets sent to it, priority and normal tickets of its fields.
        domain.counters.choose_next looks no further than these three, so it chooses among them
        what it would among the whole waiting line (tested), and a "next" reads three tickets
        instead of a busy day's thousands."""
        in_fields = ", ".join("?" for _ in fields)
        base = (f"SELECT {TICKET_SELECT} FROM tickets WHERE service_day = ? AND status = 'waiting' "
                f"AND field_id IN ({in_fields}) AND ")
        order = " ORDER BY queued_at, number, id LIMIT 1"
        lines = []
        params: list = []
        for condition, extra in (("target_counter_id = ?", [counter_id]),
                                 ("target_counter_id IS NULL AND priority IS NOT NULL", []),
                                 ("target_counter_id IS NULL AND priority IS NULL", [])):
            lines.append(f"SELECT * FROM ({base}{condition}{order})")
            params += [day.isoformat(), *fields, *extra]
        # The three lines' first tickets in one step (choose_next does not depend on their order).
        return [_ticket_from_tuple(row) for row in self._rows_in_one_step(TICKET_SELECT, " UNION ALL ".join(lines), params)]

    def count_waiting(self, day: date, field_id: str) -> tuple[int, int]:
        """(all, priority) tickets waiting in a field's line."""
        row = self.db.execute(
            "SELECT COUNT(*), COUNT(priority) FROM tickets WHERE service_day = ? AND status = 'waiting' AND field_id = ?",
            [day.isoformat(), field_id],
        ).fetchone()
        return row[0], row[1]

    def count_ahead(self, ticket: Ticket) -> int:
        """domain.tickets.people_ahead in SQL (a test keeps the two equal): priority tickets go
        before normal ones, then earlier places in line."""
        earlier = "(queued_at, number, id) < (?, ?, ?)"
        same_kind = "priority IS NOT NULL" if ticket.is_priority else "priority IS NULL"
        condition = f"({same_kind} AND {earlier})"
        if not ticket.is_priority:
            condition = f"(priority IS NOT NULL OR {condition})"
        return self.db.execute(
            "SELECT COUNT(*) FROM tickets WHERE service_day = ? AND status = 'waiting' AND field_id = ? "
            f"AND id != ? AND {condition}",
            [ticket.service_day.isoformat(), ticket.field_id, ticket.id, _iso(ticket.queued_at), ticket.number, ticket.id],
        ).fetchone()[0]

    def recent_service_times(self, day: date, field_id: str, limit: int) -> list[tuple[datetime | None, datetime | None]]:
        """(started_at, finished_at) of a line's latest finished tickets, in no promised order: what
        the wait estimate needs (domain.tickets.mean_service_s), without reading whole tickets."""
        rows = self._rows_in_one_step(
            "started_at, finished_at",
            "SELECT started_at, finished_at FROM tickets WHERE service_day = ? AND field_id = ? AND status = 'finished' "
            "ORDER BY finished_at DESC LIMIT ?",
            [day.isoformat(), field_id, limit],
        )
        return [(_dt(started_at), _dt(finished_at)) for started_at, finished_at in rows]

    def tickets_between(self, first: date, last: date) -> list[Ticket]:
        """Every ticket of the period."""
        cursor = self.db.conn.execute(
            f"SELECT {TICKET_SELECT} FROM tickets WHERE service_day BETWEEN ? AND ?",
            [first.isoformat(), last.isoformat()],
        )
        return [_ticket_from_tuple(row) for row in cursor]

    def ticket_records_between(self, first: date, last: date) -> list[tuple]:
        """What the figures read of every ticket of the period, as plain tuples in the layout of
        domain.figures.TicketRecord: a year's export reads 320,000, so no Ticket (nor dict) per row.
        The status stays the stored text (equal to its TicketStatus): a tuple of text, dates and
        numbers only is one the garbage collector stops tracking, where an enum member would keep
        320,000 tuples in every full collection."""
        return self._records_between("tickets", "service_day", TICKET_RECORD_SELECT, _ticket_record, first, last)

    def ticket_records_with_ids_between(self, first: date, last: date) -> list[tuple[str, tuple]]:
        """(id, TicketRecord-shaped tuple) of every ticket of the period: today's figures keep these."""
        return self._records_between("tickets", "service_day", TICKET_RECORD_SELECT, _ticket_record, first, last,
                                     with_ids=True)

    def ticket_records_by_ids(self, ticket_ids: Iterable[str]) -> list[tuple[str, tuple]]:
        """(id, TicketRecord-shaped tuple) of the named tickets that exist."""
        return self._records_by_ids("tickets", TICKET_RECORD_SELECT, _ticket_record, ticket_ids)

    def find_ticket_by_code(self, day: date, letter: str, number: int) -> Ticket | None:
        row = next(
            self._query(
                "SELECT * FROM tickets WHERE service_day = ? AND letter = ? AND number = ?",
                [day.isoformat(), letter, number],
            ),
            None,
        )
        return self.ticket_from_row(row) if row else None

    def idempotent_ticket(self, scope: str, key: str) -> str | None:
        row = self.db.execute("SELECT ticket_id FROM idempotency WHERE scope = ? AND key = ?", [scope, key]).fetchone()
        return row[0] if row else None

    def remember_idempotent(self, scope: str, key: str, ticket_id: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO idempotency (scope, key, ticket_id, created_at) VALUES (?, ?, ?, ?)",
            [scope, key, ticket_id, _iso(at)],
        )

    # --- counters -------------------------------------------------------------------------------

    def counter_state(self, counter_id: str) -> CounterState:
        row = next(self._query("SELECT * FROM counters WHERE counter_id = ?", [counter_id]), None)
        if row is None:
            return CounterState(counter_id=counter_id)
        return CounterState(
            counter_id=row["counter_id"],
            is_open=bool(row["is_open"]),
            clerk_id=row["clerk_id"],
            ticket_id=row["ticket_id"],
            rating_ticket_id=row["rating_ticket_id"],
            rating_until=_dt(row["rating_until"]),
            rating_done=bool(row["rating_done"]),
            normal_streak=row["normal_streak"],
            streak_day=_day(row["streak_day"]),
        )

    def count_open_counters(self, counter_ids: list[str]) -> int:
        """How many of these counters are open (one query: asked for every wait estimate). A
        counter without a row yet is open, as counter_state() says."""
        if not counter_ids:
            return 0
        closed = self.db.conn.execute(
            f"SELECT COUNT(*) FROM counters WHERE NOT is_open AND counter_id IN ({', '.join('?' * len(counter_ids))})",
            counter_ids,
        ).fetchone()[0]
        return len(set(counter_ids)) - closed

    def save_counter_state(self, state: CounterState, at: datetime) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO counters (counter_id, is_open, clerk_id, ticket_id, rating_ticket_id, "
            "rating_until, rating_done, normal_streak, streak_day, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                state.counter_id, int(state.is_open), state.clerk_id, state.ticket_id, state.rating_ticket_id,
                _iso(state.rating_until), int(state.rating_done), state.normal_streak,
                state.streak_day.isoformat() if state.streak_day else None, _iso(at),
            ],
        )

    # --- ratings --------------------------------------------------------------------------------

    @staticmethod
    def rating_from_row(row: dict) -> Rating:
        return rating_from_snapshot(row | {"reasons": json.loads(row["reasons"] or "[]")})

    def insert_rating(self, rating: Rating) -> int | None:
        """The new row's id, or None when a rating with the same msg_id is already stored."""
        cursor = self.db.conn.execute(
            "INSERT INTO ratings (msg_id, device_id, counter_id, level, received_at, day, counted, flag, ticket_id, "
            "clerk_id, dossier_code, field_id, reasons, device_at, pressed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(msg_id) DO NOTHING",
            [
                rating.msg_id, rating.device_id, rating.counter_id, rating.level, _iso(rating.received_at),
                rating.day.isoformat(), int(rating.counted), str(rating.flag) if rating.flag else None,
                rating.ticket_id, rating.clerk_id, rating.dossier_code, rating.field_id,
                _JSON_ENCODER.encode(list(rating.reasons)) if rating.reasons else "[]", _iso(rating.device_at),
                _iso(rating.pressed_at or rating.received_at),
            ],
        )
        return cursor.lastrowid if cursor.rowcount == 1 else None

    def rating_by_msg_id(self, msg_id: str) -> tuple[int, Rating] | None:
        row = next(self._query("SELECT * FROM ratings WHERE msg_id = ?", [msg_id]), None)
        return (row["id"], self.rating_from_row(row)) if row else None

    def rating_context(self, ticket_id: str | None, counter_id: str, since: datetime, until: datetime) -> tuple[bool, int]:
        """(the ticket already has its counted rating, presses at the counter in since..until],
        in one query: both are asked on every press."""
        row = self.db.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM ratings WHERE ticket_id = ? AND counted = 1), "
            "(SELECT COUNT(*) FROM ratings WHERE counter_id = ? AND pressed_at > ? AND pressed_at <= ?)",
            [ticket_id, counter_id, _iso(since), _iso(until)],
        ).fetchone()
        return bool(row[0]), row[1]

    def ratings_between(self, first: date, last: date) -> list[Rating]:
        return [rating for _, rating in self.ratings_with_ids_between(first, last)]

    def ratings_with_ids_between(self, first: date, last: date) -> list[tuple[int, Rating]]:
        rows = self._query("SELECT * FROM ratings WHERE day BETWEEN ? AND ?", [first.isoformat(), last.isoformat()])
        return [(row["id"], self.rating_from_row(row)) for row in rows]

    def rating_records_between(self, first: date, last: date) -> list[tuple]:
        """What the figures read of every rating of the period, as plain tuples in the layout of
        domain.figures.RatingRecord (no Rating, dict or JSON decoding per row)."""
        return self._records_between("ratings", "day", RATING_RECORD_SELECT, _rating_record, first, last)

    def rating_records_with_ids_between(self, first: date, last: date) -> list[tuple[int, tuple]]:
        """(id, RatingRecord-shaped tuple) of every rating of the period."""
        return self._records_between("ratings", "day", RATING_RECORD_SELECT, _rating_record, first, last, with_ids=True)

    def rating_records_by_ids(self, rating_ids: Iterable[int]) -> list[tuple[int, tuple]]:
        """(id, RatingRecord-shaped tuple) of the named ratings that exist."""
        return self._records_by_ids("ratings", RATING_RECORD_SELECT, _rating_record, rating_ids)

    def _records_between(self, table: str, day_column: str, columns: str, record: Callable[..., tuple],
                         first: date, last: date, *, with_ids: bool = False) -> list:
        cursor = self.db.conn.execute(
            f"SELECT {'id, ' if with_ids else ''}{columns} FROM {table} WHERE {day_column} BETWEEN ? AND ?",
            [first.isoformat(), last.isoformat()],
        )
        if with_ids:
            return [(row[0], record(row, 1)) for row in cursor]
        return [record(row) for row in cursor]

    def _records_by_ids(self, table: str, columns: str, record: Callable[[tuple, int], tuple],
                        ids: Iterable[str | int]) -> list[tuple]:
        found: list[tuple] = []
        for chunk in _chunks(list(ids)):
            rows = self._rows_in_one_step(
                f"id, {columns}", f"SELECT id, {columns} FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
            )
            found += [(row[0], record(row, 1)) for row in rows]
        return found

    def newest_rating_id(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(id), 0) FROM ratings").fetchone()[0]

    # --- dossiers -------------------------------------------------------------------------------

    @staticmethod
    def _dossier_row(dossier: Dossier, received_at: datetime | None = None, returned_at: datetime | None = None) -> dict:
        return {
            "code": dossier.code,
            "procedure": dossier.procedure,
            "field_id": dossier.field_id,
            "channel": str(dossier.channel),
            "received_on": dossier.received_on.isoformat(),
            "due_date": dossier.due_date.isoformat(),
            "returned_on": dossier.returned_on.isoformat() if dossier.returned_on else None,
            "pauses": json.dumps(
                [{"started_on": p.started_on.isoformat(), "ended_on": p.ended_on.isoformat() if p.ended_on else None} for p in dossier.pauses]
            ),
            "ticket_id": dossier.ticket_id,
            "counter_id": dossier.counter_id,
            "clerk_id": dossier.clerk_id,
            "delay_reason": dossier.delay_reason,
            "new_due_on": dossier.new_due_on.isoformat() if dossier.new_due_on else None,
        }

    @staticmethod
    def dossier_from_row(row: dict) -> Dossier:
        return dossier_from_snapshot(row | {"pauses": json.loads(row["pauses"] or "[]")})

    # The dossier columns, in the order _dossier_from_tuple reads them.
    DOSSIER_SELECT = (
        "code, procedure, field_id, channel, received_on, due_date, returned_on, pauses, ticket_id, counter_id, "
        "clerk_id, delay_reason, new_due_on"
    )

    @staticmethod
    def _dossier_from_tuple(row: tuple) -> Dossier:
        """What dossier_from_row gives, by position: a year's report reads 100,000 dossiers, so no
        dict per row, and no JSON decoding for a dossier never paused (most of them)."""
        (code, procedure, field_id, channel, received_on, due_date, returned_on, pauses, ticket_id, counter_id, clerk_id,
         delay_reason, new_due_on) = row
        return Dossier(
            code=code, procedure=procedure, field_id=field_id, channel=_CHANNELS[channel],
            received_on=date.fromisoformat(received_on), due_date=date.fromisoformat(due_date), returned_on=_day(returned_on),
            pauses=() if not pauses or pauses == "[]" else tuple(
                Pause(started_on=date.fromisoformat(p["started_on"]), ended_on=_day(p.get("ended_on"))) for p in json.loads(pauses)
            ),
            ticket_id=ticket_id, counter_id=counter_id, clerk_id=clerk_id, delay_reason=delay_reason, new_due_on=_day(new_due_on),
        )

    def get_dossier(self, code: str) -> Dossier | None:
        row = next(self._query("SELECT * FROM dossiers WHERE code = ?", [code]), None)
        return self.dossier_from_row(row) if row else None

    def dossiers_by_codes(self, codes: Iterable[str]) -> list[Dossier]:
        found: list[Dossier] = []
        for chunk in _chunks(list(codes)):
            rows = self._query(f"SELECT * FROM dossiers WHERE code IN ({', '.join('?' * len(chunk))})", chunk)
            found += [self.dossier_from_row(row) for row in rows]
        return found

    def insert_dossier(self, dossier: Dossier, at: datetime) -> None:
        row = self._dossier_row(dossier) | {"received_at": _iso(at), "returned_at": None}
        columns = ", ".join(row)
        self.db.execute(f"INSERT INTO dossiers ({columns}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))

    def update_dossier(self, dossier: Dossier, returned_at: datetime | None = None, rescheduled_at: datetime | None = None) -> None:
        row = self._dossier_row(dossier)
        code = row.pop("code")
        if returned_at is not None:
            row["returned_at"] = _iso(returned_at)
        if rescheduled_at is not None:
            row["rescheduled_at"] = _iso(rescheduled_at)
        assignments = ", ".join(f"{column} = ?" for column in row)
        self.db.execute(f"UPDATE dossiers SET {assignments} WHERE code = ?", [*row.values(), code])

    def dossiers_touching(self, first: date, last: date) -> list[Dossier]:
        """Dossiers received up to `last` and not returned before `first`."""
        cursor = self.db.conn.execute(
            f"SELECT {self.DOSSIER_SELECT} FROM dossiers WHERE received_on <= ? AND (returned_on IS NULL OR returned_on >= ?)",
            [last.isoformat(), first.isoformat()],
        )
        return [self._dossier_from_tuple(row) for row in cursor]

    def dossiers_list(self, *, open_only: bool = False, limit: int = 500) -> list[Dossier]:
        where = "WHERE returned_on IS NULL" if open_only else ""
        rows = self._query(f"SELECT * FROM dossiers {where} ORDER BY received_on DESC, code LIMIT ?", [limit])
        return [self.dossier_from_row(row) for row in rows]

    # --- history --------------------------------------------------------------------------------

    def append_history(self, at: datetime, day: date, kind: str, subject: str, record: object, actor: str | None = None) -> None:
        """A snapshot of `record` (a domain dataclass) after an action, encoded once."""
        self.db.conn.execute(
            "INSERT INTO history (at, day, kind, subject, actor, data) VALUES (?, ?, ?, ?, ?, ?)",
            [_iso(at), day.isoformat(), kind, subject, actor, snapshot_json(record)],
        )

    def history_seq(self) -> int:
        """The newest history entry's number (0 for none). Writes are serialised, so entries
        committed later always have higher numbers."""
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM history").fetchone()[0]

    def history_subjects(self, after_seq: int, upto_seq: int) -> list[tuple[str, str]]:
        """(kind, subject) of the entries after_seq < seq <= upto_seq: what changed since."""
        return [
            (kind, subject) for kind, subject in self._rows_in_one_step(
                "kind, subject", "SELECT kind, subject FROM history WHERE seq > ? AND seq <= ?", [after_seq, upto_seq]
            )
        ]

    def history(self) -> Iterator[dict]:
        for row in self._query("SELECT * FROM history ORDER BY seq"):
            yield row | {"data": json.loads(row["data"])}

    # --- accounts and devices -------------------------------------------------------------------

    def add_user(self, username: str, role: str, password_hash: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO users (username, role, password_hash, disabled, created_at) VALUES (?, ?, ?, 0, ?)",
            [username, role, password_hash, _iso(at)],
        )

    def get_user(self, username: str) -> dict | None:
        return next(self._query("SELECT * FROM users WHERE username = ?", [username]), None)

    def set_password(self, username: str, password_hash: str) -> None:
        self.db.execute("UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, username])

    def count_users(self, role: str | None = None) -> int:
        if role is None:
            return self.db.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM users WHERE role = ?", [role]).fetchone()[0]

    def list_users(self) -> list[dict]:
        """Every account without its password hash, by username."""
        rows = self._query("SELECT username, role, disabled, created_at FROM users ORDER BY username")
        return [row | {"disabled": bool(row["disabled"])} for row in rows]

    def count_enabled_admins(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0").fetchone()[0]

    def set_user_role(self, username: str, role: str) -> None:
        self.db.execute("UPDATE users SET role = ? WHERE username = ?", [role, username])

    def set_user_disabled(self, username: str, disabled: bool) -> None:
        self.db.execute("UPDATE users SET disabled = ? WHERE username = ?", [int(disabled), username])

    def end_sessions(self, username: str) -> int:
        """Raise the account's session epoch (every session signed before ends); the new epoch."""
        self.db.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE username = ?", [username])
        return self.db.execute("SELECT session_epoch FROM users WHERE username = ?", [username]).fetchone()[0]

    def set_device_token(self, device_id: str, token_hash: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO devices (device_id, token_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
            [device_id, token_hash, _iso(at)],
        )

    def _ensure_device(self, device_id: str, at: datetime) -> None:
        self.db.execute(
            "INSERT INTO devices (device_id, created_at) VALUES (?, ?) ON CONFLICT(device_id) DO NOTHING",
            [device_id, _iso(at)],
        )

    def set_device_status(self, device_id: str, status: str, at: datetime) -> bool:
        """Record online/offline; returns whether it changed."""
        with self.write():
            self._ensure_device(device_id, at)
            cursor = self.db.execute(
                "UPDATE devices SET status = ?, status_since = ?, last_seen_at = ? WHERE device_id = ? "
                "AND status IS NOT ?",
                [status, _iso(at), _iso(at), device_id, status],
            )
            return cursor.rowcount > 0

    def set_printer_state(self, device_id: str, state: str, detail: str | None, at: datetime) -> bool:
        with self.write():
            self._ensure_device(device_id, at)
            cursor = self.db.execute(
                "UPDATE devices SET printer_state = ?, printer_detail = ?, printer_since = ? WHERE device_id = ? "
                "AND (printer_state IS NOT ? OR printer_detail IS NOT ?)",
                [state, detail, _iso(at), device_id, state, detail],
            )
            return cursor.rowcount > 0

    def devices_seen(self, last_seen: dict[str, tuple[datetime, str]]) -> None:
        """Batch update of when each device was last heard from, and on which topic."""
        with self.write():
            for device_id, (at, topic) in last_seen.items():
                self._ensure_device(device_id, at)
                self.db.execute(
                    "UPDATE devices SET last_seen_at = ?, last_topic = ? WHERE device_id = ?",
                    [_iso(at), topic, device_id],
                )

    def list_devices(self) -> list[dict]:
        rows = self._query(
            "SELECT device_id, status, status_since, last_seen_at, last_topic, printer_state, printer_detail, "
            "printer_since, token_hash IS NOT NULL AS has_token FROM devices ORDER BY device_id"
        )
        return [row | {"has_token": bool(row["has_token"])} for row in rows]

    def device_for_token_hash(self, token_hash: str) -> str | None:
        row = self.db.execute("SELECT device_id FROM devices WHERE token_hash = ?", [token_hash]).fetchone()
        return row[0] if row else None

    # --- device messages already acted on ---------------------------------------------------------

    def seen_message(self, msg_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM seen_messages WHERE msg_id = ?", [msg_id]).fetchone() is not None

    def remember_message(self, msg_id: str, kind: str, device_id: str | None, at: datetime) -> None:
        """Record a msg_id; call it inside the write transaction of the action it caused."""
        with self.write() as db:
            db.execute(
                "INSERT INTO seen_messages (msg_id, kind, device_id, at) VALUES (?, ?, ?, ?)",
                [msg_id, kind, device_id, _iso(at)],
            )

    # --- scheduled exports ----------------------------------------------------------------------

    def exported_formats(self, day: date) -> set[str]:
        """Formats of `day` the scheduled export has written."""
        rows = self.db.execute("SELECT format FROM export_runs WHERE day = ? AND status = 'ok'", [day.isoformat()])
        return {row[0] for row in rows}

    def record_export_run(self, day: date, fmt: str | None, status: str, path: str | None, detail: str | None, at: datetime) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO export_runs (day, format, status, path, detail, at) VALUES (?, ?, ?, ?, ?, ?)",
                [day.isoformat(), fmt, status, path, (detail or "")[:500] or None, _iso(at)],
            )

    def recent_export_runs(self, limit: int = 50) -> list[dict]:
        return list(self._query("SELECT day, format, status, path, detail, at FROM export_runs ORDER BY id DESC LIMIT ?", [limit]))

    def first_history_day(self) -> date | None:
        """The local day of the oldest history entry: nothing happened at the centre before it."""
        return _day(self.db.execute("SELECT MIN(day) FROM history").fetchone()[0])

    # --- rejected input -------------------------------------------------------------------------

    def add_reject(self, at: datetime, source: str, where: str, reason: str, detail: str, payload: str | None = None, device_id: str | None = None) -> None:
        with self.write() as db:
            db.execute(
                "INSERT INTO rejects (at, source, where_, device_id, reason, detail, payload) VALUES (?,?,?,?,?,?,?)",
                [_iso(at), source, where, device_id, reason, detail[:500], (payload or "")[:4096]],
            )

    def reject_counts(self) -> dict[str, int]:
        return {row["reason"]: row["n"] for row in self._query("SELECT reason, COUNT(*) AS n FROM rejects GROUP BY reason")}

    def recent_rejects(self, limit: int = 100) -> list[dict]:
        rows = self._query("SELECT * FROM rejects ORDER BY id DESC LIMIT ?", [limit])
        return [{("where" if k == "where_" else k): v for k, v in row.items()} for row in rows]

    # --- alerts ---------------------------------------------------------------------------------

    def waiting_lines(self, day: date, cutoffs: dict[str, datetime]) -> dict[str, WaitingLine]:
        """domain.alerts.waiting_lines of the day's waiting tickets, counted here: per field with
        a ticket waiting, how many wait, how many were issued before the field's cutoff, and the
        first issued. A busy line is counted by SQLite, not read ticket by ticket (stored instants
        are fixed-width UTC text: they compare as the instants do)."""
        lines = {}
        rows = self.db.conn.execute(
            "SELECT field_id, COUNT(*) FROM tickets WHERE service_day = ? AND status = 'waiting' GROUP BY field_id",
            [day.isoformat()],
        ).fetchall()
        for field_id, waiting in rows:
            cutoff = cutoffs.get(field_id)
            over = 0
            if cutoff is not None:
                over = self.db.conn.execute(
                    "SELECT COUNT(*) FROM tickets WHERE service_day = ? AND status = 'waiting' AND field_id = ?"
                    " AND issued_at < ?",
                    [day.isoformat(), field_id, _iso(cutoff)],
                ).fetchone()[0]
            ticket_id, letter, number, issued_at = self.db.conn.execute(
                "SELECT id, letter, number, issued_at FROM tickets WHERE service_day = ? AND status = 'waiting'"
                " AND field_id = ? ORDER BY issued_at, number LIMIT 1",
                [day.isoformat(), field_id],
            ).fetchone()
            lines[field_id] = WaitingLine(waiting, over, (ticket_id, format_code(letter, number), from_iso(issued_at)))
        return lines

    def counted_ratings_since(self, since: datetime, first_day: date) -> list[tuple[str, str, int]]:
        """(counter, level, how many) of the counted presses judged to have happened after
        `since`. `first_day` is the earliest local day of receipt they can have: the day index
        keeps the search to the last rows instead of the whole history."""
        return self.db.conn.execute(
            "SELECT counter_id, level, COUNT(*) FROM ratings WHERE day >= ? AND pressed_at > ? AND counted"
            " GROUP BY counter_id, level",
            [first_day.isoformat(), _iso(since)],
        ).fetchall()

    @staticmethod
    def _alert_from_row(row: dict) -> dict:
        return row | {
            "details": json.loads(row["details"]),
            "raised_at": from_iso(row["raised_at"]),
            "cleared_at": _dt(row["cleared_at"]),
        }

    def open_alert(self, condition: AlertCondition, at: datetime) -> int:
        """A new open alert; its id. Inside a write transaction."""
        cursor = self.db.conn.execute(
            "INSERT INTO alerts (rule_id, kind, subject, severity, message_vi, message_en, details, raised_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [condition.rule_id, condition.kind, condition.subject, condition.severity, condition.message_vi,
             condition.message_en, _details_json(condition.details), _iso(at)],
        )
        return cursor.lastrowid

    def refresh_alert(self, alert_id: int, condition: AlertCondition) -> None:
        """An open alert's new figures: same alert, same `raised_at`."""
        self.db.conn.execute(
            "UPDATE alerts SET kind = ?, severity = ?, message_vi = ?, message_en = ?, details = ? "
            "WHERE id = ? AND cleared_at IS NULL",
            [condition.kind, condition.severity, condition.message_vi, condition.message_en,
             _details_json(condition.details), alert_id],
        )

    def clear_alert(self, alert_id: int, at: datetime) -> None:
        self.db.conn.execute("UPDATE alerts SET cleared_at = ? WHERE id = ? AND cleared_at IS NULL", [_iso(at), alert_id])

    def get_alert(self, alert_id: int) -> dict | None:
        row = next(self._query("SELECT * FROM alerts WHERE id = ?", [alert_id]), None)
        return self._alert_from_row(row) if row else None

    def active_alerts(self) -> list[dict]:
        """Open alerts, oldest first, details decoded and times parsed."""
        rows = self._query("SELECT * FROM alerts WHERE cleared_at IS NULL ORDER BY raised_at, id")
        return [self._alert_from_row(row) for row in rows]

    def cleared_alerts(self, since: datetime, limit: int = 100) -> list[dict]:
        """Alerts cleared at or after `since`, the latest first."""
        rows = self._query(
            "SELECT * FROM alerts WHERE cleared_at >= ? ORDER BY cleared_at DESC, id DESC LIMIT ?", [_iso(since), limit]
        )
        return [self._alert_from_row(row) for row in rows]


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    """Lists short enough for one `IN (...)` (SQLite limits the number of parameters)."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _json_default(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return str(value)


@functools.lru_cache(maxsize=None)
def _field_names(record_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))


# Made once: json.dumps with options builds an encoder on every call (several per message).
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_json_default)


def _details_json(details: object) -> str:
    return _JSON_ENCODER.encode(dict(details))  # type: ignore[call-overload]


def snapshot_json(record: object) -> str:
    """A domain record as the history keeps it: its fields as JSON, dates in ISO-8601."""
    return _JSON_ENCODER.encode({name: getattr(record, name) for name in _field_names(type(record))})
