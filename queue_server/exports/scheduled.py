"""The scheduled export: once the centre closes, the day's totals are written to a folder.

`[exports] folder` turns it on. A thread started by `motcua serve` and `motcua demo` looks every
POLL_S seconds; when local time has passed `[exports] at` (default: the latest closing time of
`opening_hours`) it writes `daily-totals-YYYY-MM-DD.csv|xlsx|pdf` for the day through the same
code as `motcua export`. Each file is written to a temporary name in the folder and renamed, so a
reader never sees half a file. Each file written is recorded (table export_runs): that is how a
day is remembered as done, so a file moved away to an archive is not written again. After
downtime the open days of the last CATCH_UP_DAYS days whose files are missing are written too,
from the first day the centre has any history (nothing before it to report). A failure (a folder
that cannot be written, a full disk) is logged and recorded with its reason, never raised: the
server keeps serving and the runner tries again later, waiting longer after each failure.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path

from ..config import WEEKDAYS, Config
from ..domain.timeutil import local_day
from ..service import QueueService
from .jobs import daily_totals_export

log = logging.getLogger(__name__)

POLL_S = 30.0
# Open days before today whose missing files are still written after downtime.
CATCH_UP_DAYS = 7
FIRST_RETRY_S = 300
MAX_RETRY_S = 3600
# Aggregate figures only (no citizen data): readable by whoever collects the reports.
FILE_MODE = 0o644


def file_name(day: date, fmt: str) -> str:
    return f"daily-totals-{day.isoformat()}.{fmt}"


def export_folder(config: Config, data_dir: Path) -> Path | None:
    """The configured folder (a relative one is inside the data directory), or None when off."""
    if not config.exports.folder:
        return None
    folder = Path(config.exports.folder).expanduser()
    return folder if folder.is_absolute() else data_dir / folder


def export_minutes(config: Config) -> int:
    """Minutes after local midnight at which a day's files are due (1440 = 24:00)."""
    if config.exports.at is not None:
        hours, minutes = config.exports.at.split(":")
        return int(hours) * 60 + int(minutes)
    return max(period.close_minutes for period in config.opening_hours)


def export_time_text(config: Config) -> str:
    minutes = export_minutes(config)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def is_open_day(config: Config, day: date) -> bool:
    """Whether the centre (or any field with hours of its own) opens on `day`."""
    if day in config.holidays:
        return False
    weekday = WEEKDAYS[day.weekday()]
    periods = [*config.opening_hours, *(p for f in config.fields if f.opening_hours for p in f.opening_hours)]
    return any(weekday in period.days for period in periods)


def due_days(config: Config, now: datetime, first_activity: date | None) -> list[date]:
    """The days whose files are due at `now`, oldest first: open days from CATCH_UP_DAYS days
    ago up to today whose export time has passed, none before the first day with history."""
    if first_activity is None:
        return []
    tz = config.tz
    today = local_day(now, tz)
    minutes = export_minutes(config)
    days = []
    for offset in range(CATCH_UP_DAYS, -1, -1):
        day = today - timedelta(days=offset)
        due_at = datetime.combine(day, time(0), tzinfo=tz) + timedelta(minutes=minutes)
        if day >= first_activity and now >= due_at and is_open_day(config, day):
            days.append(day)
    return days


@dataclass
class RunResult:
    """What one pass did: the files written, and the failure that stopped it (if any)."""

    written: list[Path] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False  # waiting before retrying after a failure


class ScheduledExporter:
    """Writes due days' files on each `run_once`; `start` runs it in a thread until `stop`."""

    def __init__(self, service: QueueService, folder: Path, *, poll_s: float = POLL_S) -> None:
        self.service = service
        self.folder = folder
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: datetime | None = None
        self._retry_s = FIRST_RETRY_S
        self.passes = 0
        self.pass_done = threading.Event()  # set after each pass (tests wait on it, never on time)

    # --- one pass ---------------------------------------------------------------------------------

    def run_once(self) -> RunResult:
        """Write every due file not written yet; never raises."""
        svc = self.service
        now = svc.now()
        result = RunResult()
        if self._retry_at is not None and now < self._retry_at:
            result.skipped = True
            return result
        day, fmt = local_day(now, svc.config.tz), None
        try:
            for day in due_days(svc.config, now, svc.store.first_history_day()):
                done = svc.store.exported_formats(day)
                for fmt in svc.config.exports.formats:
                    if fmt not in done:
                        result.written.append(self._write(day, fmt, now))
                fmt = None
        except Exception as exc:  # the server must keep running whatever went wrong here
            result.error = f"{type(exc).__name__}: {exc}"
            self._failed(day, fmt, result.error, now)
        else:
            self._retry_at, self._retry_s = None, FIRST_RETRY_S
        return result

    def _write(self, day: date, fmt: str, now: datetime) -> Path:
        export = daily_totals_export(self.service, day, day, fmt)
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / file_name(day, fmt)
        # In the same folder, so that the rename is atomic; a dot name, so that nothing
        # collecting *.csv picks up a file still being written.
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as output:
                output.write(export.content)
                output.flush()
                os.fsync(output.fileno())
            os.chmod(temporary, FILE_MODE)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _sync_folder(self.folder)
        self.service.store.record_export_run(day, fmt, "ok", str(target), None, now)
        log.info("scheduled export: wrote %s (%d bytes)", target, len(export.content))
        return target

    def _failed(self, day: date, fmt: str | None, reason: str, now: datetime) -> None:
        log.error("scheduled export of %s (%s) to %s failed: %s; next try in %d s", day, fmt or "-", self.folder, reason, self._retry_s)
        try:
            target = str(self.folder / file_name(day, fmt)) if fmt else str(self.folder)
            self.service.store.record_export_run(day, fmt, "error", target, reason, now)
        except Exception:
            log.exception("scheduled export: the failure could not be recorded either")
        # Wait before trying again, longer each time: a folder that stays unwritable must
        # not fill the log and the table every half minute.
        self._retry_at = now + timedelta(seconds=self._retry_s)
        self._retry_s = min(self._retry_s * 2, MAX_RETRY_S)

    # --- the thread -------------------------------------------------------------------------------

    def start(self) -> "ScheduledExporter":
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="scheduled-export", daemon=True)
        self._thread.start()
        log.info("scheduled export to %s after %s each open day (%s)", self.folder, export_time_text(self.service.config),
                 ", ".join(self.service.config.exports.formats))
        return self

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # run_once never raises; this keeps the thread alive if it ever did
                log.exception("scheduled export pass failed")
            self.passes += 1
            self.pass_done.set()
            if self._stop.wait(self.poll_s):
                return

    def stop(self, timeout: float = 30.0) -> None:
        """Ends the thread after the pass under way (a file is never left half-written)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("scheduled export still writing after %.0f s; leaving it to finish", timeout)
            self._thread = None


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the system allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems (network shares) cannot sync a folder; the file itself is synced
    finally:
        os.close(descriptor)


def start_scheduled_exports(service: QueueService, data_dir: Path) -> ScheduledExporter | None:
    """The runner's thread, started, when `[exports] folder` is set; else None."""
    folder = export_folder(service.config, data_dir)
    if folder is None:
        return None
    return ScheduledExporter(service, folder).start()


def scheduled_status(service: QueueService, data_dir: Path, limit: int = 50) -> dict:
    """The settings and the latest runs, for GET /api/v1/exports/scheduled."""
    folder = export_folder(service.config, data_dir)
    return {
        "enabled": folder is not None,
        "folder": str(folder) if folder is not None else None,
        "at": export_time_text(service.config),
        "formats": list(service.config.exports.formats),
        "catch_up_days": CATCH_UP_DAYS,
        "runs": service.store.recent_export_runs(limit),
    }
