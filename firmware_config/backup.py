"""`motcua backup` and `motcua restore`: the server's SQLite database, copied while the server runs.

Backup uses SQLite's online backup API in a single step: the copy is one read transaction, so
in WAL mode it never blocks the server's writers, and it holds exactly the transactions that
had committed when it began (every event the server had acknowledged by then) and nothing
half-written. The copy is checked (PRAGMA integrity_check), switched to a self-contained
rollback-journal file, and only then renamed into place, so a backup file that exists is a
whole one.

Restore checks the backup first, refuses to touch a database that a running server has open
(unless forced), keeps the database it replaces beside it, and swaps the file in with a rename.
Forced onto a live database, it copies through the backup API instead, which SQLite makes
atomic for the server's connections too; restart the server afterwards.
"""
from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

BUSY_TIMEOUT_S = 30.0
MOTCUA_TABLES = ("tickets", "ratings", "history")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    schema_version: int
    rows: dict[str, int]
    seconds: float


@dataclass(frozen=True)
class RestoreResult:
    target: Path
    previous: Path | None  # where the replaced database was kept (None: there was none, or live copy)
    live: bool  # copied into a database the server had open (--force)
    rows: dict[str, int]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def integrity(conn: sqlite3.Connection) -> str:
    """'ok', or what PRAGMA integrity_check found (first lines)."""
    found = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
    return "ok" if found == ["ok"] else "; ".join(found[:5])


def _rows(conn: sqlite3.Connection) -> dict[str, int]:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]  # noqa: S608 - our own table names
            for name in MOTCUA_TABLES if name in tables}


def backup_database(source: str | Path, destination: str | Path) -> BackupResult:
    """Copy the live database `source` to `destination` (0600, replaced atomically if it exists)."""
    source, destination = Path(source), Path(destination)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.partial")
    started = time.monotonic()
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # users' hashes inside: owner only
    try:
        src = sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)
        try:
            dst = sqlite3.connect(partial)
            try:
                # pages=-1: one step, one read transaction. Stepping would restart the copy each
                # time the server commits in between, and a busy server might never let it end.
                src.backup(dst, pages=-1)
                # The copy inherits WAL mode; a backup is better as one self-contained file.
                dst.execute("PRAGMA journal_mode=DELETE")
                found = integrity(dst)
                if found != "ok":
                    raise BackupError(f"the copy of {source} failed its integrity check: {found}")
                version = dst.execute("PRAGMA user_version").fetchone()[0]
                rows = _rows(dst)
            finally:
                dst.close()
        finally:
            src.close()
        _fsync_file(partial)
        os.replace(partial, destination)
        _fsync_dir(destination.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(destination, destination.stat().st_size, version, rows, time.monotonic() - started)


def database_in_use(path: str | Path) -> bool:
    """Whether another connection (the running server) has the database open.

    Every connection to a WAL database holds a shared lock on it for as long as it is open; a
    connection in exclusive locking mode cannot begin an exclusive transaction until none is
    left. SQLite keeps these locks right between processes and between connections of one
    process, so no lock file of our own is needed.
    """
    path = Path(path)
    if not path.exists():
        return False
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            return True
        conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


def check_backup(path: str | Path) -> tuple[int, dict[str, int]]:
    """A backup that can be restored: sound, a motcua database, not from a newer version.
    Returns (schema version, row counts)."""
    from queue_server.store import MIGRATIONS

    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            found = integrity(conn)
            if found != "ok":
                raise BackupError(f"{path} failed its integrity check: {found}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [name for name in MOTCUA_TABLES if name not in tables]
            if missing:
                raise BackupError(f"{path} is not a motcua database (no {', '.join(missing)} table)")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            rows = _rows(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from None
    if version > len(MIGRATIONS):
        raise BackupError(f"{path} was made by a newer motcua (schema {version}, this one knows "
                          f"{len(MIGRATIONS)}): upgrade first")
    return version, rows


def restore_database(backup: str | Path, target: str | Path, *, force: bool = False) -> RestoreResult:
    """Put `backup` in place of the database `target`.

    Without `force`, a database the server has open is left alone (BackupError). The replaced
    database (with its -wal and -shm, if any) is kept as `{name}.before-restore-{time}`."""
    backup, target = Path(backup), Path(target)
    check_backup(backup)
    if database_in_use(target):
        if not force:
            raise BackupError(f"{target} is open (is the server running?): stop it first "
                              "(systemctl stop motcua-server), or restore with --force and restart it after")
        return _restore_live(backup, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        rows = _copy_checked(backup, partial, wal=True)
        _fsync_file(partial)
        previous = None
        if target.exists():
            stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
            previous = target.with_name(f"{target.name}.before-restore-{stamp}")
            # The old file with its own WAL: a -wal left beside the new file would be replayed into it.
            for suffix in ("", "-wal", "-shm"):
                old = Path(f"{target}{suffix}")
                if old.exists():
                    os.replace(old, Path(f"{previous}{suffix}"))
        os.replace(partial, target)
        _fsync_dir(target.parent)
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {target} failed: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return RestoreResult(target, previous, False, rows)


def _restore_live(backup: Path, target: Path) -> RestoreResult:
    """Copy into the open database in one SQLite transaction: the server's connections see either
    the old database or the restored one, never a mixture."""
    try:
        rows = _copy_checked(backup, target)
    except sqlite3.Error as exc:
        raise BackupError(f"restore into {target} failed: {exc}") from None
    return RestoreResult(target, None, True, rows)


def _copy_checked(backup: Path, target: Path, *, wal: bool = False):
    """Copy `backup` into `target` with SQLite's backup API, check the result, count its rows."""
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S)
        try:
            src.backup(dst)
            if wal:
                dst.execute("PRAGMA journal_mode=WAL")  # as the server keeps it
            found = integrity(dst)
            if found != "ok":
                raise BackupError(f"{target} failed its integrity check after the restore: {found}")
            return _rows(dst)
        finally:
            dst.close()
    finally:
        src.close()
