"""`motcua backup` / `motcua restore`: SQLite's online backup while the server writes, and a restore
that checks the backup, keeps the replaced database and leaves a running server's file alone."""
from __future__ import annotations

import argparse
import sqlite3
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from firmware_config.backup import BackupError, backup_database, database_in_use, restore_database
from firmware_config.cli import add_cli
from queue_server.config import load_config
from queue_server.server import DATABASE_NAME, build
from tests.mqtt.helpers import add_served_tickets

from .conftest import Site, wait_until

FIELD = "ho-tich"  # no daily cap in the sample centre


class Writer:
    """Issues tickets through the service as fast as it can; `acknowledged` holds the id of every
    ticket whose transaction had committed when issue_ticket returned."""

    def __init__(self, server) -> None:
        self.server = server
        self.acknowledged: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-writer", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                view, _ = self.server.service.issue_ticket(FIELD)
                with self.lock:
                    self.acknowledged.append(view["id"])
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure = exc

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def snapshot(self) -> set[str]:
        with self.lock:
            return set(self.acknowledged)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert self.failure is None, self.failure


@pytest.fixture
def server(site: Site):
    server = build(load_config(site.site_config), site.data_dir)
    yield server
    server.store.close()


def database(site: Site) -> Path:
    return site.data_dir / DATABASE_NAME


def rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_backup_during_live_writes_holds_everything_acknowledged_before_it_began(site: Site, server, tmp_path) -> None:
    # Some history first, so that the copy takes a while.
    add_served_tickets(server, 3000, finished_at=datetime.now(timezone.utc), field_id="dat-dai")
    backup = tmp_path / "backups" / "motcua.sqlite3"
    with Writer(server) as writer:
        wait_until(lambda: writer.count() >= 50, "the writer to get going")
        acknowledged_before = writer.snapshot()
        result = backup_database(database(site), backup)
        after_backup = writer.count()
        wait_until(lambda: writer.count() >= after_backup + 20, "writes to carry on after the backup")
    everything = writer.snapshot()

    assert result.path == backup and result.rows["tickets"] >= 3000 + len(acknowledged_before)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert rows(backup, "PRAGMA journal_mode") == [("delete",)]  # one self-contained file
    assert not Path(f"{backup}-wal").exists()

    target = tmp_path / "restored" / DATABASE_NAME
    restored = restore_database(backup, target)
    assert restored.previous is None and not restored.live
    assert rows(target, "PRAGMA integrity_check") == [("ok",)]
    in_backup = {row[0] for row in rows(target, f"SELECT id FROM tickets WHERE field_id = '{FIELD}'")}
    assert acknowledged_before <= in_backup  # nothing acknowledged before the backup began is lost
    assert in_backup <= everything  # and nothing that was never committed is there
    assert len(everything) > len(in_backup)  # the writes went on past the backup
    history = rows(target, f"SELECT COUNT(*) FROM history WHERE kind = 'ticket_issued'")[0][0]
    assert history == len(in_backup)  # each ticket with its history record, never one without the other


def test_a_backup_does_not_wait_for_an_open_write_and_leaves_it_out(site: Site, server, tmp_path) -> None:
    server.service.issue_ticket(FIELD)
    writer = sqlite3.connect(database(site), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO history (at, day, kind, subject, data) VALUES ('x', 'x', 'uncommitted', 'x', '{}')")
        result = backup_database(database(site), tmp_path / "backup.sqlite3")  # would time out if it waited
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert result.rows["tickets"] == 1
    assert rows(result.path, "SELECT COUNT(*) FROM history WHERE kind = 'uncommitted'") == [(0,)]


def test_restore_leaves_a_running_servers_database_alone_unless_forced(site: Site, server, tmp_path) -> None:
    first, _ = server.service.issue_ticket(FIELD)
    backup = backup_database(database(site), tmp_path / "backup.sqlite3").path
    later, _ = server.service.issue_ticket(FIELD)

    assert database_in_use(database(site))
    with pytest.raises(BackupError, match="is open"):
        restore_database(backup, database(site))
    assert server.service.get_ticket(later["id"])  # untouched

    result = restore_database(backup, database(site), force=True)
    assert result.live and result.rows["tickets"] == 1
    # The server's own connections see the restored database at once.
    ids = {row[0] for row in server.store.db.execute("SELECT id FROM tickets").fetchall()}
    assert ids == {first["id"]}
    assert server.store.check() == "ok"


def test_restore_keeps_the_replaced_database(site: Site, server, tmp_path) -> None:
    server.service.issue_ticket(FIELD)
    backup = backup_database(database(site), tmp_path / "backup.sqlite3").path
    server.service.issue_ticket(FIELD)
    server.store.close()
    assert not database_in_use(database(site))

    result = restore_database(backup, database(site))
    assert not result.live and result.previous is not None
    assert rows(result.previous, "SELECT COUNT(*) FROM tickets") == [(2,)]
    assert rows(database(site), "SELECT COUNT(*) FROM tickets") == [(1,)]
    assert rows(database(site), "PRAGMA journal_mode") == [("wal",)]


def test_restore_refuses_what_is_not_a_sound_motcua_backup(site: Site, server, tmp_path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    other = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text)")
    conn.commit()
    conn.close()
    server.store.close()
    for bad, words in ((tmp_path / "missing.sqlite3", "no backup"), (garbage, "not a readable SQLite database"),
                       (other, "not a motcua database")):
        with pytest.raises(BackupError, match=words):
            restore_database(bad, database(site))
    assert rows(database(site), "PRAGMA integrity_check") == [("ok",)]


def motcua(*args: str) -> int:
    parser = argparse.ArgumentParser(prog="motcua")
    add_cli(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(list(args))
    return parsed.handler(parsed)


def test_the_backup_and_restore_commands(site: Site, server, tmp_path, capsys) -> None:
    server.service.issue_ticket(FIELD)
    backup = tmp_path / "nightly.sqlite3"
    assert motcua("backup", "--config", str(site.site_config), "-o", str(backup)) == 0
    assert "1 tickets" in capsys.readouterr().out
    assert motcua("restore", str(backup), "--config", str(site.site_config)) == 1
    assert "stop it first" in capsys.readouterr().err
    server.store.close()
    assert motcua("restore", str(backup), "--config", str(site.site_config)) == 0
    assert "kept as" in capsys.readouterr().out
