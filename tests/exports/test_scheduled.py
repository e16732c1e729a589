"""The scheduled export at closing time: due days, the files it writes (and that they open), what it
remembers, catching up after downtime, failures recorded without stopping, and its thread."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from openpyxl import load_workbook

from queue_server.config import ConfigError
from queue_server.domain.counters import Action
from queue_server.exports import scheduled
from queue_server.exports.scheduled import ScheduledExporter, due_days, export_folder, export_minutes, start_scheduled_exports
from queue_server.service import QueueService
from tests.api.conftest import assert_error, local
from tests.conftest import make_config
from tests.exports.conftest import pdf_text, render_pages

MONDAY = date(2026, 11, 23)  # the test clock's day
FILES = sorted(f"daily-totals-2026-11-23.{fmt}" for fmt in ("csv", "xlsx", "pdf"))


@pytest.fixture
def config():
    return make_config(exports={"folder": "exports", "at": "17:30"})


@pytest.fixture
def folder(server, tmp_path) -> Path:
    found = export_folder(server.config, tmp_path)
    assert found == tmp_path / "exports"  # relative: inside the data directory
    return found


@pytest.fixture
def exporter(server, folder) -> ScheduledExporter:
    return ScheduledExporter(server.service, folder)


def serve_one(service, clock, field: str = "dat-dai") -> None:
    service.issue_ticket(field)
    clock.advance(minutes=3)
    service.counter_action("quay-1", Action.NEXT, clerk_id="nguyen-van-an")
    clock.advance(minutes=5)
    service.counter_action("quay-1", Action.FINISH)


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


# --- when -------------------------------------------------------------------------------------------------


def test_before_closing_time_nothing_is_written(service, clock, exporter, folder):
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 17, 29))
    result = exporter.run_once()
    assert result.written == [] and result.error is None
    assert names(folder) == []


def test_after_closing_time_the_days_three_files_are_written_and_open(service, clock, exporter, folder, tmp_path):
    serve_one(service, clock)
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 17, 30))
    result = exporter.run_once()
    assert result.error is None and sorted(path.name for path in result.written) == sorted(FILES)
    assert names(folder) == sorted(FILES)  # no temporary file left behind

    rows = list(csv.DictReader(io.StringIO((folder / "daily-totals-2026-11-23.csv").read_bytes().decode("utf-8-sig"))))
    overall = next(row for row in rows if row["Phân loại / Breakdown"] == "overall")
    assert overall["Ngày / Day"] == "2026-11-23" and overall["Số phát / Issued"] == "2" and overall["Đã phục vụ / Served"] == "2"

    sheet = load_workbook(folder / "daily-totals-2026-11-23.xlsx")["Tổng hợp"]
    header = [cell.value for cell in sheet[1]]
    assert sheet.cell(2, header.index("Số phát / Issued") + 1).value == 2

    pdf = (folder / "daily-totals-2026-11-23.pdf").read_bytes()
    assert len(render_pages(pdf, tmp_path)) >= 1
    assert "BÁO CÁO TỔNG HỢP" in pdf_text(pdf, tmp_path) and "23/11/2026" in pdf_text(pdf, tmp_path)

    runs = service.store.recent_export_runs()
    assert sorted((run["day"], run["format"], run["status"]) for run in runs) == [
        ("2026-11-23", "csv", "ok"), ("2026-11-23", "pdf", "ok"), ("2026-11-23", "xlsx", "ok")]
    assert {run["path"] for run in runs} == {str(folder / name) for name in FILES}


def test_a_second_run_writes_nothing_new(service, clock, exporter, folder):
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 17, 45))
    assert len(exporter.run_once().written) == 3
    written = {name: (folder / name).stat().st_mtime_ns for name in names(folder)}
    clock.advance(minutes=30)
    assert exporter.run_once().written == []
    assert {name: (folder / name).stat().st_mtime_ns for name in names(folder)} == written
    assert len(service.store.recent_export_runs()) == 3


def test_a_file_moved_away_is_not_written_again(service, clock, exporter, folder):
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 18))
    exporter.run_once()
    (folder / FILES[0]).unlink()  # the manager took it to the province's share
    assert exporter.run_once().written == []


def test_only_the_configured_formats_are_written(server, clock, tmp_path):
    config = make_config(exports={"folder": str(tmp_path / "reports"), "formats": ["xlsx"]})
    service = QueueService(config, server.store, clock)
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 23))
    result = ScheduledExporter(service, export_folder(config, tmp_path / "data")).run_once()
    assert [path.name for path in result.written] == ["daily-totals-2026-11-23.xlsx"]
    assert result.written[0].parent == tmp_path / "reports"  # an absolute folder is used as given


# --- catching up -------------------------------------------------------------------------------------------


def test_missed_days_are_caught_up_open_days_only_and_at_most_a_week_back(service, clock, exporter, folder):
    clock.set(local(2026, 11, 10, 9))  # Tuesday two weeks ago: too old to catch up
    serve_one(service, clock)
    clock.set(local(2026, 11, 20, 9))  # Friday: the server was down from Friday noon to Monday
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 8))  # Monday morning, before closing time
    result = exporter.run_once()
    written = sorted(path.name for path in result.written)
    # Tue 17 to Fri 20 are within the week and open; the weekend is closed; Monday is not due yet.
    assert written == sorted(f"daily-totals-2026-11-{day}.{fmt}" for day in (16, 17, 18, 19, 20) for fmt in ("csv", "xlsx", "pdf"))
    friday = list(csv.DictReader(io.StringIO((folder / "daily-totals-2026-11-20.csv").read_bytes().decode("utf-8-sig"))))
    assert next(row for row in friday if row["Phân loại / Breakdown"] == "overall")["Số phát / Issued"] == "1"
    clock.set(local(2026, 11, 23, 17, 31))
    assert sorted(path.name for path in exporter.run_once().written) == FILES


def test_nothing_is_written_for_days_before_the_centre_had_any_history(service, clock, exporter, folder):
    clock.set(local(2026, 11, 23, 20))
    assert exporter.run_once().written == [] and names(folder) == []  # a fresh install: no history at all
    clock.set(local(2026, 11, 23, 9))
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 20))
    assert sorted(path.name for path in exporter.run_once().written) == FILES  # today only, not the week before


@pytest.mark.parametrize(("now", "expected"), [
    (local(2026, 11, 23, 17, 29), [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]),
    (local(2026, 11, 23, 17, 30), [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20), MONDAY]),
    (local(2027, 1, 4, 9), [date(2026, 12, 28), date(2026, 12, 29), date(2026, 12, 30)]),  # 31 Dec and 1 Jan are holidays
])
def test_due_days(config, now, expected):
    assert due_days(config, now, first_activity=date(2026, 1, 1)) == expected


def test_the_default_time_is_the_latest_closing_time():
    assert export_minutes(make_config()) == 17 * 60  # the default hours close at 11:30 and 17:00
    late = make_config(opening_hours=[{"days": ["sat"], "open": "07:30", "close": "11:30"},
                                      {"days": ["mon"], "open": "13:00", "close": "19:15"}])
    assert export_minutes(late) == 19 * 60 + 15
    assert export_minutes(make_config(exports={"at": "24:00"})) == 24 * 60


def test_at_24_00_writes_the_day_just_after_midnight(server, clock, tmp_path):
    config = make_config(exports={"folder": "exports", "at": "24:00"})
    service = QueueService(config, server.store, clock)
    serve_one(service, clock)
    exporter = ScheduledExporter(service, export_folder(config, tmp_path))
    clock.set(local(2026, 11, 23, 23, 59))
    assert exporter.run_once().written == []
    clock.set(local(2026, 11, 24, 0, 0))
    assert sorted(path.name for path in exporter.run_once().written) == FILES


@pytest.mark.parametrize(("exports", "path"), [
    ({"at": "17h30"}, "exports.at"),
    ({"at": "24:30"}, "exports.at"),
    ({"formats": ["csv", "docx"]}, "exports.formats[1]"),
    ({"formats": []}, "exports.formats"),
    ({"formats": ["csv", "csv"]}, "exports.formats"),
    ({"folder": "exports", "when": "17:30"}, "exports.when"),
])
def test_bad_exports_settings_name_their_key(exports, path):
    with pytest.raises(ConfigError) as raised:
        make_config(exports=exports)
    assert any(problem[0] == path for problem in raised.value.problems), raised.value.problems


def test_no_folder_means_no_scheduled_export(tmp_path):
    assert export_folder(make_config(), tmp_path) is None


# --- failures ------------------------------------------------------------------------------------------------


def test_a_folder_that_cannot_be_written_is_recorded_and_the_runner_keeps_going(service, clock, exporter, folder, manager):
    serve_one(service, clock)
    folder.write_text("a file where the folder should be")  # unwritable for anyone, root included
    clock.set(local(2026, 11, 23, 17, 31))
    result = exporter.run_once()
    assert result.written == [] and result.error is not None
    [run] = service.store.recent_export_runs()
    assert run["status"] == "error" and run["day"] == "2026-11-23" and run["format"] == "csv"
    assert "FileExistsError" in run["detail"] or "NotADirectoryError" in run["detail"], run["detail"]
    status = manager.get("/api/v1/exports/scheduled").get_json()
    assert status["runs"][0]["status"] == "error" and status["enabled"] is True

    folder.unlink()  # the technician fixes it
    clock.advance(minutes=1)
    assert exporter.run_once().skipped  # it waits a little before trying again…
    clock.advance(minutes=5)
    assert sorted(path.name for path in exporter.run_once().written) == FILES  # …then writes the files
    clock.advance(minutes=1)
    assert exporter.run_once().skipped is False  # after a success there is no waiting


def test_the_wait_after_failures_grows_and_is_capped(service, clock, exporter, folder):
    serve_one(service, clock)
    folder.write_text("not a folder")
    clock.set(local(2026, 11, 23, 17, 31))
    waits = []
    for _ in range(6):
        exporter.run_once()
        waits.append(round((exporter._retry_at - clock.now()).total_seconds()))
        clock.set(exporter._retry_at)
    assert waits == [300, 600, 1200, 2400, 3600, 3600]
    assert [run["status"] for run in service.store.recent_export_runs()] == ["error"] * 6


def test_a_failed_export_leaves_no_partial_file(service, clock, exporter, folder, monkeypatch):
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 17, 31))

    def disk_full(descriptor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scheduled.os, "fsync", disk_full)
    result = exporter.run_once()
    assert "No space left on device" in result.error
    assert names(folder) == []  # neither the file nor its temporary


# --- the status endpoint --------------------------------------------------------------------------------------


def test_managers_see_the_settings_and_runs(service, clock, exporter, folder, manager, clerk):
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 17, 31))
    exporter.run_once()
    status = manager.get("/api/v1/exports/scheduled").get_json()
    assert {key: status[key] for key in ("enabled", "folder", "at", "formats", "catch_up_days")} == {
        "enabled": True, "folder": str(folder), "at": "17:30", "formats": ["csv", "xlsx", "pdf"], "catch_up_days": 7}
    assert len(status["runs"]) == 3 and {run["status"] for run in status["runs"]} == {"ok"}
    assert_error(clerk.get("/api/v1/exports/scheduled"), 403, "forbidden")


# --- the thread ----------------------------------------------------------------------------------------------


def test_the_thread_writes_on_its_first_pass_and_stops_at_once(server, service, clock, tmp_path):
    serve_one(service, clock)
    clock.set(local(2026, 11, 23, 18))
    runner = start_scheduled_exports(service, tmp_path)
    try:
        assert runner is not None and runner.pass_done.wait(60), "no pass within a minute"
        assert names(runner.folder) == FILES
    finally:
        runner.stop(timeout=10)
    assert runner._thread is None and runner.passes >= 1


def test_without_a_folder_no_thread_is_started(server, clock, tmp_path):
    assert start_scheduled_exports(QueueService(make_config(), server.store, clock), tmp_path) is None


def test_day_boundaries_are_local(config):
    """17:30 in Hà Nội is 10:30 UTC: the day's files are due then, not at 17:30 UTC."""
    first = date(2026, 11, 23)
    assert due_days(config, datetime(2026, 11, 23, 10, 29, tzinfo=timezone.utc), first) == []
    assert due_days(config, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc), first) == [first]
    assert due_days(config, datetime(2026, 11, 23, 10, 30, tzinfo=timezone.utc) + timedelta(hours=14), first) == [first]
